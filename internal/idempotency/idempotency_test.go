package idempotency

import (
	"strings"
	"testing"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{
		"":                       false,
		"a":                      true,
		"order-42 / retry #1":    true,
		strings.Repeat("k", 255): true,
		strings.Repeat("k", 256): false,
		"tab\there":              false,
		"caf\u00e9":              false, // not ASCII
		"new\nline":              false,
	} {
		if ValidKey(k) != want {
			t.Errorf("ValidKey(%q) = %v, want %v", k, !want, want)
		}
	}
}

func TestFingerprintIgnoresTheKeyOnly(t *testing.T) {
	a := &ytcaptionv1.CreateJobRequest{Url: "https://youtu.be/dQw4w9WgXcQ", Language: "en", IdempotencyKey: "k1"}
	b := &ytcaptionv1.CreateJobRequest{Url: "https://youtu.be/dQw4w9WgXcQ", Language: "en", IdempotencyKey: "k2"}
	c := &ytcaptionv1.CreateJobRequest{Url: "https://youtu.be/dQw4w9WgXcQ", Language: "de", IdempotencyKey: "k1"}
	if string(Fingerprint(a)) != string(Fingerprint(b)) {
		t.Error("the key must not change the fingerprint")
	}
	if string(Fingerprint(a)) == string(Fingerprint(c)) {
		t.Error("other parameters must change the fingerprint")
	}
	if a.IdempotencyKey != "k1" {
		t.Error("Fingerprint must not modify its argument")
	}
}

func TestFingerprintOfABatchIgnoresItsKeyOnly(t *testing.T) {
	a := &ytcaptionv1.CreateBatchRequest{Urls: []string{"https://youtu.be/dQw4w9WgXcQ"}, MaxItems: 5, IdempotencyKey: "k1"}
	b := &ytcaptionv1.CreateBatchRequest{Urls: []string{"https://youtu.be/dQw4w9WgXcQ"}, MaxItems: 5, IdempotencyKey: "k2"}
	c := &ytcaptionv1.CreateBatchRequest{Urls: []string{"https://youtu.be/dQw4w9WgXcQ"}, MaxItems: 6, IdempotencyKey: "k1"}
	if string(Fingerprint(a)) != string(Fingerprint(b)) {
		t.Error("the key must not change the fingerprint")
	}
	if string(Fingerprint(a)) == string(Fingerprint(c)) {
		t.Error("other parameters must change the fingerprint")
	}
	if a.IdempotencyKey != "k1" {
		t.Error("Fingerprint must not modify its argument")
	}
}
