package connectapi

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// SaveTranscript stores an edit in core; this edge's copy of the finished
// job no longer shows its revision.
func (f *front) SaveTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.SaveTranscriptRequest]) (*connect.Response[ytcaptionv1.SaveTranscriptResponse], error) {
	defer f.d.Finished.Forget(req.Msg.GetId())
	return f.d.Core.Jobs.SaveTranscript(ctx, forward(ctx, req.Msg))
}

func (f *front) ListRevisions(ctx context.Context, req *connect.Request[ytcaptionv1.ListRevisionsRequest]) (*connect.Response[ytcaptionv1.ListRevisionsResponse], error) {
	return f.d.Core.Jobs.ListRevisions(ctx, forward(ctx, req.Msg))
}

// GetJobAudio is not served here: core's answer is a URL of the blob store,
// which only the edge may see. The audio itself is REST's
// GET /v1/jobs/{id}/audio.
func (f *front) GetJobAudio(context.Context, *connect.Request[ytcaptionv1.GetJobAudioRequest]) (*connect.Response[ytcaptionv1.GetJobAudioResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("the audio is served over REST: GET /v1/jobs/{id}/audio"))
}
