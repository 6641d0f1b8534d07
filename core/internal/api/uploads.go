package api

import (
	"context"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// jobSource is what a CreateJob request asks to transcribe, and the URL the
// job shows: a media URL, or a finished resumable upload of the caller's
// (already in the blob store under its content key, as UploadJob stores a
// small file, so the fetch stage reads both alike).
func (s *JobService) jobSource(ctx context.Context, m *ytcaptionv1.CreateJobRequest) (mediaurl.Source, string, error) {
	id := m.GetUploadId()
	if id == "" {
		src, err := mediaurl.Parse(m.GetUrl())
		if err == nil {
			err = s.checkLiteralAddress(src.URL)
		}
		return src, m.GetUrl(), err
	}
	if m.GetUrl() != "" {
		return mediaurl.Source{}, "", job.Errorf(job.CodeInvalidArgument, "give url or upload_id, not both")
	}
	u, err := s.store.GetUpload(ctx, userID(ctx), id)
	if err != nil {
		return mediaurl.Source{}, "", err
	}
	if !u.Finished() {
		return mediaurl.Source{}, "", job.Errorf(job.CodeConflict, "upload %s is not complete: %d of %d bytes have arrived", u.ID, u.Received, u.Size)
	}
	return mediaurl.Source{Kind: job.SourceUpload, URL: u.BlobKey}, job.UploadURL(u.Filename), nil
}
