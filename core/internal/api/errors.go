package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// connectCodes maps job error codes to Connect codes. Codes that are not here
// are job failure codes, which are stored on jobs rather than returned by RPCs.
var connectCodes = map[string]connect.Code{
	job.CodeInvalidURL:      connect.CodeInvalidArgument,
	job.CodeInvalidArgument: connect.CodeInvalidArgument,
	job.CodeUnsupported:     connect.CodeInvalidArgument,
	job.CodeNotFound:        connect.CodeNotFound,
	job.CodeUnauthorized:    connect.CodeUnauthenticated,
	job.CodeForbidden:       connect.CodePermissionDenied,
	job.CodeConflict:        connect.CodeFailedPrecondition,
	job.CodeIdempotencyKey:  connect.CodeFailedPrecondition,
	job.CodeNotReady:        connect.CodeFailedPrecondition,
	job.CodeExpired:         connect.CodeNotFound,
	job.CodeLeaseLost:       connect.CodeFailedPrecondition,
	job.CodeUnavailable:     connect.CodeUnavailable,
	job.CodeQuotaExceeded:   connect.CodeResourceExhausted,
	job.CodeIntakePaused:    connect.CodeUnavailable,
	errcode.RequestTooLarge: connect.CodeInvalidArgument, // a cookie file over the cap: sending it again will not help

	// Translations: no translator, one still running, one that failed
	// (asking again queues it again).
	errcode.TranslationUnavailable: connect.CodeUnavailable,
	errcode.TranslationNotReady:    connect.CodeFailedPrecondition,
	errcode.TranslationFailed:      connect.CodeFailedPrecondition,

	// Revisions and audio: a bad edit, a lost race, none such.
	errcode.InvalidTranscript: connect.CodeInvalidArgument,
	errcode.RevisionConflict:  connect.CodeAborted,
	errcode.RevisionNotFound:  connect.CodeNotFound,
	errcode.JobNotFinished:    connect.CodeFailedPrecondition,
	errcode.AudioNotFound:     connect.CodeNotFound,

	// Share links: a job not finished, as many live links as it may have,
	// and every reason a link does not open.
	errcode.TooManyShares: connect.CodeFailedPrecondition,
	errcode.ShareNotFound: connect.CodeNotFound,

	// What a site says of a video, from ListCaptions (a download's failures
	// are stored on the job instead).
	job.CodeSourceNotFound:   connect.CodeNotFound,
	job.CodeVideoUnavailable: connect.CodeNotFound,
	job.CodeSourceForbidden:  connect.CodePermissionDenied,
	job.CodePrivateVideo:     connect.CodePermissionDenied,
	job.CodeAgeRestricted:    connect.CodePermissionDenied,
	job.CodeLoginRequired:    connect.CodePermissionDenied,
	job.CodeGeoBlocked:       connect.CodePermissionDenied,
	job.CodeTooLong:          connect.CodeFailedPrecondition,
	job.CodeLiveNotSupported: connect.CodeFailedPrecondition,
	job.CodeDownloadFailed:   connect.CodeUnavailable,
	job.CodeBotCheck:         connect.CodeUnavailable,
	job.CodeRateLimited:      connect.CodeUnavailable,
}

// toConnectError is the one place core's errors become Connect errors. Coded
// errors keep their code as an ErrorDetail; anything else is logged once here
// and leaves as a generic internal error.
func toConnectError(ctx context.Context, log *slog.Logger, err error) error {
	var je *job.Error
	if errors.As(err, &je) {
		code, ok := connectCodes[je.Code]
		if !ok {
			code = connect.CodeInternal
		}
		msg := je.Message
		if msg == "" {
			msg = je.Code
		}
		return errcode.Connect(code, je.Code, msg)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return errcode.Connect(connect.CodeInternal, job.CodeInternal, "internal error")
}
