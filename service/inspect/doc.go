// Package inspect learns what an upload is from its bytes as they stream:
// container and codecs, duration, dimensions, frame rate, audio, GIF
// frames, image size, subtitle cues. It exists so that media X would
// reject after processing (too long, 4:4:4, 10-bit, 120 fps, a PNG sent as
// video/mp4, ...) can be refused before INIT, or at the latest before
// FINALIZE, with a reason; the rules themselves are in package
// [github.com/mediagw/mediagw/service/inspect/rules].
//
// It depends on the standard library and golang.org/x/image only.
//
// # Use
//
//	in := inspect.New(mediaType, totalBytes) // totalBytes -1 when unknown
//	for chunk := range upload {
//		in.Write(chunk) // never fails, never keeps chunk, always len(chunk), nil
//		if vs := rules.Check(category, in.Report(), false); len(vs) > 0 {
//			// refuse: before INIT if no segment went to X yet
//		}
//	}
//	r := in.Finish() // only needed when totalBytes was unknown
//	if vs := rules.Check(category, r, true); len(vs) > 0 {
//		// refuse before FINALIZE
//	}
//
// [Inspector.Write] turns malformed media into [Report.Problem], never into
// an error, so an inspector can sit in the byte path (an [io.MultiWriter]
// next to the segment writer) without ever failing an upload by itself.
// [Inspector.Report] is a value copy, cheap to take after every chunk;
// [Report.Known] says which values are decided and [Report.Complete] that
// no later byte can change them. An inspector is used by one goroutine.
//
// # When values are known
//
//   - The format: after 16 bytes (magic numbers; text by the declared type).
//   - MP4/MOV: everything with the moov. A faststart file (moov before
//     mdat) is decided within its first kilobytes; with the moov after the
//     mdat, only at the end. A fragmented movie (mvex in the moov) has its
//     codecs and dimensions with the moov and its duration and frame rate
//     at the end (sums over the moofs), unless the moov has mehd.
//   - GIF: the logical screen at byte 13; the frame count grows as image
//     descriptors pass and is final at the trailer.
//   - PNG, JPEG, WebP, BMP, TIFF: the dimensions once the header is in.
//   - SRT, WebVTT: UTF-8 and cue problems at the line that has them; the
//     cue count at the end.
//
// # ISO BMFF boxes read (ISO/IEC 14496-12)
//
// Top level: ftyp (major brand: "qt  " is MOV), moov, moof; mdat and every
// other box not named here are skipped by counting, whatever their size
// (32- and 64-bit sizes, size 0 = to the end of the parent). A child that
// overruns its parent stops the walk with a problem. Inside moov: mvhd (timescale,
// duration), trak/tkhd (track_ID), trak/mdia/mdhd (timescale, duration),
// mdia/hdlr (vide, soun), minf/stbl/stsd (first sample entry:
// avc1/avc3+avcC, hvc1/hev1+hvcC, mp4a+esds, also inside a QuickTime
// wave, pasp), stbl/stts (sample count and durations: the average frame
// rate), mvex/mehd and mvex/trex (default sample duration). Inside moof:
// traf/tfhd and traf/trun (sample counts and durations).
//
// Codec configuration: the H.264 SPS from avcC is read with Exp-Golomb
// codes (ITU-T H.264 §7.3.2.1.1) for profile, level, chroma_format_idc and
// bit depth; HEVC takes general_profile_idc, general_level_idc,
// chromaFormat and bitDepthLumaMinus8 from hvcC (ISO/IEC 14496-15
// §8.3.3.1); AAC takes the audio object type, sampling frequency and
// channel configuration from the AudioSpecificConfig in esds (ISO/IEC
// 14496-3 §1.6.2.1). Names follow ffprobe (codec_name, profile, pix_fmt:
// "yuv420p10le"), which is the test oracle. Not read: the VUI (so a
// full-range H.264 stream that ffprobe calls yuvj420p is yuv420p here),
// interlacing and GOP structure (which need the samples in mdat), and an
// MP3 track's channel count (in its frame headers).
//
// # Memory and CPU
//
// Per inspector, at most:
//
//   - the body of one box read whole, up to [MaxTableBytes] (4 MiB) for
//     stts and trun and 1 MiB for the others (ftyp, mvhd, tkhd, mdhd,
//     hdlr, stsd, mehd, trex, tfhd); the buffer grows with the bytes that
//     arrive, so a size that lies costs nothing, and at most 64 KiB of it
//     is kept between boxes (while it grows, the old and the new buffer
//     are both live: 1.5 times its size at most). A constant frame rate makes stts 24 bytes,
//     and a fragment's trun is 4–16 bytes per sample. A box over its cap
//     is skipped and its values stay unknown ([Report.Oversized]), which
//     the rules do not report. Containers (moov, trak, mdia, minf, stbl,
//     mvex, moof, traf) are walked as their bytes pass, never buffered,
//     so the large tables of a moov (stsz, stco, ctts, stss) cost nothing;
//   - a stack of at most 16 open containers and up to 64 tracks;
//   - the first [MaxImageHeaderBytes] (256 KiB) of a still image, freed
//     once its header decodes;
//   - one subtitle line, up to [MaxSubtitleLineBytes] (16 KiB);
//   - for GIF 13 bytes, plus the fixed state (under 1 KiB).
//
// Bytes of an mdat (or any skipped box) cost a subtraction per Write: no
// per-byte work and no copy, so the cost is per call, not per byte
// (BenchmarkInspectMP4: a 480 MiB movie, moov after mdat, in 32 KiB
// writes takes 0.2–0.6 ms on a loaded 2-core machine, 16–40 ns a write,
// 2 KiB allocated). Image headers are retried only when the kept prefix doubles;
// GIF sub-blocks are skipped by their length bytes.
//
// # Findings
//
// [Report.Problem] holds the first thing found certainly wrong: a box
// whose size is impossible or overruns its parent, a cut sample entry or
// parameter set, a GIF block that is no block, an image header that does
// not decode, bytes of no known format, bytes beyond the declared total,
// and, once the stream has ended, truncation (a box, header or GIF cut
// short) and a movie without moov. Subtitle problems are in
// [Report.Subtitles]. A still image cut after its header is not detected
// (pixels are not decoded). A parser bug is caught and reported as a
// problem starting "internal:", which the rules ignore.
package inspect
