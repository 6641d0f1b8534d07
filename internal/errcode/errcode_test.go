package errcode_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ytcaption/ytcaption/internal/errcode"
)

// readmeList returns the backquoted codes of the README paragraph that
// starts with lead, up to the paragraph's end.
func readmeList(t *testing.T, readme, lead string) []string {
	t.Helper()
	i := strings.Index(readme, lead)
	if i < 0 {
		t.Fatalf("the README has no %q", lead)
	}
	para := readme[i+len(lead):]
	if end := strings.Index(para, "\n\n"); end >= 0 {
		para = para[:end]
	}
	var codes []string
	for _, m := range regexp.MustCompile("`([a-z][a-z_]*[a-z])`").FindAllStringSubmatch(para, -1) {
		if !slices.Contains(codes, m[1]) {
			codes = append(codes, m[1])
		}
	}
	return codes
}

// TestTheREADMEListsEveryCodeAndNoOther: the README's two lists — the codes
// of error replies and the codes of failed jobs — are this package's, no
// more and no fewer, so a code added in the code is documented and a code
// in the documentation exists.
func TestTheREADMEListsEveryCodeAndNoOther(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	// The failed-job paragraph starts inside the request one; cut there.
	requestPara := readme[strings.Index(readme, "Request codes:"):strings.Index(readme, "A failed job carries one of:")]
	request := readmeList(t, requestPara, "Request codes:")
	failed := readmeList(t, readme, "A failed job carries one of:")
	var wantRequest, wantJob []string
	for _, i := range errcode.All {
		if i.Kind == errcode.Request || i.Kind == errcode.Both {
			wantRequest = append(wantRequest, i.Code)
		}
		if i.Kind == errcode.Job || i.Kind == errcode.Both {
			wantJob = append(wantJob, i.Code)
		}
	}
	diff := func(name string, doc, code []string) {
		for _, c := range code {
			if !slices.Contains(doc, c) {
				t.Errorf("%s: %q is a code but the README does not list it", name, c)
			}
		}
		for _, c := range doc {
			if !slices.Contains(code, c) {
				t.Errorf("%s: the README lists %q, which is not in package errcode", name, c)
			}
		}
	}
	diff("request codes", request, wantRequest)
	diff("failed-job codes", failed, wantJob)
}

func TestEveryCodeIsListedOnceWithAStatusWhereItIsAReply(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, i := range errcode.All {
		if seen[i.Code] {
			t.Errorf("%q is listed twice", i.Code)
		}
		seen[i.Code] = true
		if !regexp.MustCompile(`^[a-z][a-z_]*[a-z]$`).MatchString(i.Code) {
			t.Errorf("%q is not snake_case", i.Code)
		}
		if (i.Kind == errcode.Job) != (i.Status == 0) {
			t.Errorf("%q: a reply code needs an HTTP status and a job-only code has none (kind %d, status %d)", i.Code, i.Kind, i.Status)
		}
	}
	if !errcode.IsJobFailure(errcode.AudioUnavailable) || errcode.IsJobFailure(errcode.NotFound) || errcode.IsJobFailure("made_up") {
		t.Error("IsJobFailure accepts exactly the job codes")
	}
	if !errcode.IsJobFailure(errcode.UnsupportedOption) {
		t.Error("unsupported_option fails a job a gpu-node cannot serve")
	}
}

// TestRetryHelpsOnlyWhereTheFailureIsNotTheMedias: a retry is offered for
// a failed download, never for a file without audio; every code it refuses
// is a job failure.
func TestRetryHelpsOnlyWhereTheFailureIsNotTheMedias(t *testing.T) {
	t.Parallel()
	for code, helps := range map[string]bool{
		errcode.NotMedia: false, errcode.TooLong: false, errcode.VideoUnavailable: false, errcode.PrivateVideo: false,
		errcode.DownloadFailed: true, errcode.EngineFailed: true, errcode.BotCheck: true, errcode.LoginRequired: true,
		errcode.AttemptsExhausted: true, errcode.AudioUnavailable: true,
	} {
		if got := errcode.RetryHelps(code); got != helps {
			t.Errorf("RetryHelps(%q) = %v, want %v", code, got, helps)
		}
	}
	for _, i := range errcode.All {
		if !errcode.RetryHelps(i.Code) && !errcode.IsJobFailure(i.Code) && i.Code != errcode.InvalidURL {
			t.Errorf("%s is refused a retry but is no job failure", i.Code)
		}
	}
}
