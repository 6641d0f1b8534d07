// Package wav reads and writes the audio ytcaption passes between its stages:
// 16 kHz mono 16-bit PCM WAV, as ffmpeg writes it (which may put other RIFF
// chunks, such as LIST, before the samples).
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// The format every stage uses: samples a second, bytes a sample, and the
// size of the header Write and Header give it.
const (
	SampleRate     = 16000
	BytesPerSample = 2
	HeaderSize     = 44
)

// FindData walks the RIFF chunks to the "data" chunk: ffmpeg may write
// others (LIST) before it.
func FindData(r io.ReadSeeker) (start, length int64, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WAVE" {
		return 0, 0, errors.New("not a WAV file")
	}
	pos := int64(12)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0, 0, errors.New("a WAV file without data")
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		pos += 8
		if string(ch[:4]) == "data" {
			if end, err := r.Seek(0, io.SeekEnd); err == nil && (size == 0 || size == 0xffffffff || pos+size > end) {
				size = end - pos // a streamed header leaves the size unset
			}
			return pos, size &^ 1, nil
		}
		pos += size + size&1
		if _, err := r.Seek(pos, io.SeekStart); err != nil {
			return 0, 0, err
		}
	}
}

// Write writes n bytes of 16 kHz mono 16-bit samples from r as a WAV file.
func Write(path string, r io.Reader, n int64) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := out.Write(Header(n)); err != nil {
		out.Close()
		return err
	}
	if _, err := io.CopyN(out, r, n); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Header is the 44-byte header of a WAV file holding n bytes of 16 kHz
// mono 16-bit samples.
func Header(n int64) []byte {
	h := make([]byte, HeaderSize)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+n))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], SampleRate)
	binary.LittleEndian.PutUint32(h[28:], SampleRate*BytesPerSample)
	binary.LittleEndian.PutUint16(h[32:], BytesPerSample)
	binary.LittleEndian.PutUint16(h[34:], 8*BytesPerSample)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(n))
	return h
}

// Duration is how long a 16 kHz mono 16-bit WAV lasts, from its data size.
func Duration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, n, err := FindData(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return DataDuration(n), nil
}

// DataDuration is how long n bytes of samples last.
func DataDuration(n int64) time.Duration {
	return time.Duration(n/BytesPerSample) * time.Second / SampleRate
}

// DataBytes is how many bytes of samples d holds, to the sample below.
func DataBytes(d time.Duration) int64 {
	return int64(d/(time.Second/SampleRate)) * BytesPerSample
}
