package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Form is the shape a door sends a creation's reply in.
type Form int

const (
	JSON  Form = iota + 1 // REST: the job as JSON, with an HTTP status
	Proto                 // Connect: the CreateJobResponse message
)

// Created is a job creation's reply, in the Form asked for.
type Created struct {
	// Replayed: the reply to an earlier request with the same key, from
	// the edge's copy or from core, which remembered the key when the copy
	// was lost.
	Replayed bool
	Status   int    // JSON: the HTTP status
	Body     []byte // JSON: the job
	Msg      *ytcaptionv1.CreateJobResponse
}

// CreateFunc asks core to create the job msg describes.
type CreateFunc func(ctx context.Context, msg *ytcaptionv1.CreateJobRequest) (*connect.Response[ytcaptionv1.CreateJobResponse], error)

// Create runs one job creation of userID's under msg's idempotency key, when
// it has one. The first request with a key runs create and its reply is kept
// (24 h) for both doors; a retry with the same parameters gets that reply
// again, Replayed; the key with other parameters is refused (KeyMismatch),
// and so is a duplicate while the first still runs (KeyInUse). A failed
// creation is not kept: the client may retry it. An invalid key is refused
// (Invalid) before anything runs.
func (g *Gate) Create(ctx context.Context, userID string, form Form, msg *ytcaptionv1.CreateJobRequest, create CreateFunc) (*Created, error) {
	key := msg.GetIdempotencyKey()
	if key == "" {
		resp, err := create(ctx, msg)
		if err != nil {
			return nil, err
		}
		return created(form, resp.Msg)
	}
	if !idempotency.ValidKey(key) {
		return nil, refuse(Invalid, errcode.InvalidIdempotencyKey,
			fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen))
	}
	fp := idempotency.Fingerprint(msg)
	out, stored, lock := g.Replays.Begin(ctx, userID, key, fp)
	switch out {
	case replay.Replay:
		if c := replayed(form, stored); c != nil {
			return c, nil
		}
		// Kept by an edge that stored no message: ask core, which replays.
	case replay.Mismatch:
		return nil, refuse(KeyMismatch, errcode.IdempotencyMismatch, "this Idempotency-Key was used with different parameters")
	case replay.InUse:
		return nil, refuse(KeyInUse, errcode.IdempotencyInUse, "a request with this Idempotency-Key is still being processed; retry shortly")
	}
	resp, err := create(ctx, msg)
	if err != nil {
		lock.Finish(ctx, nil)
		return nil, err
	}
	c, err := created(form, resp.Msg)
	if err != nil {
		lock.Finish(ctx, nil)
		return nil, err
	}
	lock.Finish(ctx, keep(fp, resp.Msg, c.Body))
	return c, nil
}

func created(form Form, resp *ytcaptionv1.CreateJobResponse) (*Created, error) {
	c := &Created{Replayed: resp.GetReplayed()}
	if form == Proto {
		c.Msg = resp
		return c, nil
	}
	body, err := json.Marshal(jobjson.From(resp.GetJob()))
	if err != nil {
		return nil, fmt.Errorf("job as JSON: %w", err)
	}
	c.Status, c.Body = http.StatusAccepted, body
	return c, nil
}

// replayed is the kept reply r in form, or nil when r lacks that form.
func replayed(form Form, r *replay.Response) *Created {
	if form == JSON {
		return &Created{Replayed: true, Status: r.Status, Body: r.Body}
	}
	if r.Proto == nil {
		return nil
	}
	var msg ytcaptionv1.CreateJobResponse
	if err := proto.Unmarshal(r.Proto, &msg); err != nil {
		return nil
	}
	msg.Replayed = true
	return &Created{Replayed: true, Msg: &msg}
}

// keep is what both doors keep for a key: the REST body (body, when already
// made) and the Connect message, so a retry over either replays it. Nil —
// keep nothing — when either cannot be made.
func keep(fp []byte, resp *ytcaptionv1.CreateJobResponse, body []byte) *replay.Response {
	if body == nil {
		var err error
		if body, err = json.Marshal(jobjson.From(resp.GetJob())); err != nil {
			return nil
		}
	}
	first := proto.CloneOf(resp)
	first.Replayed = false
	pb, err := proto.Marshal(first)
	if err != nil {
		return nil
	}
	return &replay.Response{Fingerprint: fp, Status: http.StatusAccepted, Body: body, Proto: pb}
}
