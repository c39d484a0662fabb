package inspect

import (
	"fmt"
)

// Codec names for sample entries whose configuration is not parsed, as
// ffprobe's codec_name spells them.
var videoCodecNames = map[string]string{
	"avc1": "h264", "avc2": "h264", "avc3": "h264", "avc4": "h264",
	"hvc1": "hevc", "hev1": "hevc", "mp4v": "mpeg4", "av01": "av1",
	"vp08": "vp8", "vp09": "vp9", "jpeg": "mjpeg", "s263": "h263",
	"apch": "prores", "apcn": "prores", "apcs": "prores", "apco": "prores", "ap4h": "prores",
}

var audioCodecNames = map[string]string{
	"mp4a": "aac", ".mp3": "mp3", "ac-3": "ac3", "ec-3": "eac3", "Opus": "opus",
	"fLaC": "flac", "alac": "alac", "sowt": "pcm_s16le", "twos": "pcm_s16be",
	"lpcm": "pcm", "samr": "amr_nb", "ulaw": "pcm_mulaw", "alaw": "pcm_alaw",
}

// sampleEntry parses the first sample entry of a track's stsd
// (VisualSampleEntry / AudioSampleEntry, ISO/IEC 14496-12 §12.1.3, §12.2.3).
func (t *track) sampleEntry(typ string, b []byte) string {
	switch {
	case t.video:
		return t.visualEntry(typ, b)
	case t.audio:
		return t.audioEntry(typ, b)
	}
	return ""
}

func (t *track) visualEntry(typ string, b []byte) string {
	v := &t.v
	v.CodecTag = typ
	v.Codec = videoCodecNames[typ]
	if v.Codec == "" {
		v.Codec = typ
	}
	v.SARNum, v.SARDen = 1, 1
	r := reader{b: b}
	r.skip(24)
	v.Width, v.Height = int(r.u16()), int(r.u16())
	r.skip(50)
	if r.bad {
		return "stsd: the visual sample entry is cut short"
	}
	return eachBox(r.rest(), "sample entry", func(typ string, body []byte) string {
		switch typ {
		case "avcC":
			return parseAVCC(body, v)
		case "hvcC":
			return parseHVCC(body, v)
		case "pasp":
			r := reader{b: body}
			h, vs := r.u32(), r.u32()
			if !r.bad && h > 0 && vs > 0 {
				n, d := reduce(uint64(h), uint64(vs))
				v.SARNum, v.SARDen = int(n), int(d)
			}
		}
		return ""
	})
}

func (t *track) audioEntry(typ string, b []byte) string {
	a := &t.a
	a.CodecTag = typ
	a.Codec = audioCodecNames[typ]
	if a.Codec == "" {
		a.Codec = typ
	}
	r := reader{b: b}
	r.skip(8)
	version := r.u16()
	r.skip(6)
	a.Channels = int(r.u16())
	r.skip(6)
	a.SampleRate = int(r.u32() >> 16)
	switch version { // QuickTime sound description versions (and ISO v1)
	case 1:
		r.skip(16)
	case 2:
		r.skip(4)
		rate := r.u64()
		a.Channels = int(r.u32())
		r.skip(20)
		if f := float64frombits(rate); f > 0 && f < 1e7 {
			a.SampleRate = int(f)
		}
	}
	if r.bad {
		return "stsd: the audio sample entry is cut short"
	}
	return t.audioChildren(r.rest(), 0)
}

func (t *track) audioChildren(b []byte, depth int) string {
	return eachBox(b, "sample entry", func(typ string, body []byte) string {
		switch typ {
		case "esds":
			if len(body) < 4 {
				return "esds is cut short"
			}
			return parseESDS(body[4:], &t.a)
		case "wave": // QuickTime wraps esds in a wave atom
			if depth == 0 {
				return t.audioChildren(body, 1)
			}
		}
		return ""
	})
}

// parseAVCC reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// §5.3.3) and its first SPS.
func parseAVCC(b []byte, v *Video) string {
	r := reader{b: b}
	r.skip(1)
	profile, compat, level := r.u8(), r.u8(), r.u8()
	r.skip(1)
	nsps := r.u8() & 0x1f
	v.Profile = h264Profile(int(profile), compat)
	v.Level = int(level)
	v.ChromaFormat, v.BitDepth = "4:2:0", 8
	if r.bad {
		return "avcC is cut short"
	}
	if nsps > 0 {
		n := int(r.u16())
		sps := r.bytes(n)
		if r.bad {
			return "avcC: the SPS is cut short"
		}
		if err := parseSPS(sps, v); err != "" {
			return err
		}
	}
	v.PixFmt = pixFmt(v.ChromaFormat, v.BitDepth)
	return ""
}

var chromaNames = []string{"4:0:0", "4:2:0", "4:2:2", "4:4:4"}

// parseSPS reads an H.264 seq_parameter_set_rbsp (ITU-T H.264 §7.3.2.1.1)
// up to the bit depths.
func parseSPS(nal []byte, v *Video) string {
	if len(nal) < 4 || nal[0]&0x1f != 7 {
		return "avcC: the first parameter set is not an SPS"
	}
	br := bitReader{b: unescape(nal[1:])}
	profile := br.bits(8)
	compat := br.bits(8)
	v.Level = int(br.bits(8))
	v.Profile = h264Profile(int(profile), uint8(compat))
	br.ue() // seq_parameter_set_id
	chroma, depth := uint64(1), uint64(0)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = br.ue()
		if chroma == 3 {
			br.bits(1) // separate_colour_plane_flag
		}
		depth = br.ue()
		br.ue() // bit_depth_chroma_minus8
	}
	if br.bad || chroma > 3 || depth > 6 {
		return "avcC: the SPS is malformed"
	}
	v.ChromaFormat = chromaNames[chroma]
	v.BitDepth = int(depth) + 8
	return ""
}

// h264Profile names a profile_idc as ffprobe does.
func h264Profile(p int, compat uint8) string {
	c1, c3 := compat&0x40 != 0, compat&0x10 != 0
	switch p {
	case 66:
		if c1 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		if c3 {
			return "High 10 Intra"
		}
		return "High 10"
	case 122:
		if c3 {
			return "High 4:2:2 Intra"
		}
		return "High 4:2:2"
	case 244:
		if c3 {
			return "High 4:4:4 Intra"
		}
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4"
	}
	return fmt.Sprintf("profile_idc %d", p)
}

// parseHVCC reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// §8.3.3.1): general profile and level, chromaFormat and bit depths.
func parseHVCC(b []byte, v *Video) string {
	r := reader{b: b}
	r.skip(1)
	p := r.u8()
	r.skip(4 + 6)
	v.Level = int(r.u8())
	r.skip(2 + 1)
	chroma := r.u8() & 0x03
	depth := r.u8() & 0x07
	if r.bad {
		return "hvcC is cut short"
	}
	v.Profile = hevcProfile(int(p & 0x1f))
	v.ChromaFormat = chromaNames[chroma]
	v.BitDepth = int(depth) + 8
	v.PixFmt = pixFmt(v.ChromaFormat, v.BitDepth)
	return ""
}

func hevcProfile(p int) string {
	switch p {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Rext"
	case 9:
		return "SCC"
	}
	return fmt.Sprintf("general_profile_idc %d", p)
}

// pixFmt names a chroma format and bit depth as ffmpeg's pix_fmt does.
func pixFmt(chroma string, depth int) string {
	base := map[string]string{"4:0:0": "gray", "4:2:0": "yuv420p", "4:2:2": "yuv422p", "4:4:4": "yuv444p"}[chroma]
	if depth > 8 {
		return fmt.Sprintf("%s%dle", base, depth)
	}
	return base
}

// parseESDS reads the ES_Descriptor of an esds box (ISO/IEC 14496-1 §7.2.6)
// for the object type and, for MPEG-4 audio, the AudioSpecificConfig.
func parseESDS(b []byte, a *Audio) string {
	tag, body, _ := descriptor(b)
	if tag != 0x03 || len(body) < 3 {
		return "esds: no ES_Descriptor"
	}
	flags := body[2]
	body = body[3:]
	if flags&0x80 != 0 && len(body) >= 2 {
		body = body[2:]
	}
	if flags&0x40 != 0 && len(body) >= 1 {
		body = body[min(len(body), 1+int(body[0])):]
	}
	if flags&0x20 != 0 && len(body) >= 2 {
		body = body[2:]
	}
	tag, dcd, _ := descriptor(body)
	if tag != 0x04 || len(dcd) < 13 {
		return "esds: no DecoderConfigDescriptor"
	}
	switch oti := dcd[0]; oti {
	case 0x40, 0x66, 0x67, 0x68:
		a.Codec = "aac"
		if oti != 0x40 {
			a.ObjectType = int(oti) - 0x65 // MPEG-2 AAC Main, LC, SSR
			a.Profile = aacProfile(a.ObjectType)
		}
	case 0x69, 0x6b:
		// The channel count of MP3 in MP4 is in its frame headers (in
		// mdat, not read); writers put a fixed 2 in the sample entry.
		a.Codec = "mp3"
		a.Channels = 0
	case 0xa5:
		a.Codec = "ac3"
	case 0xa6:
		a.Codec = "eac3"
	case 0xdd:
		a.Codec = "vorbis"
	}
	if dcd[0] != 0x40 {
		return ""
	}
	tag, asc, _ := descriptor(dcd[13:])
	if tag != 0x05 || len(asc) < 2 {
		return "esds: no AudioSpecificConfig"
	}
	parseASC(asc, a)
	return ""
}

// descriptor splits an MPEG-4 descriptor (tag, expandable size, body).
func descriptor(b []byte) (tag byte, body, rest []byte) {
	if len(b) < 2 {
		return 0, nil, nil
	}
	tag = b[0]
	n, i := 0, 1
	for ; i < len(b) && i <= 4; i++ {
		n = n<<7 | int(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			break
		}
	}
	i++
	if i > len(b) || n > len(b)-i {
		return tag, nil, nil
	}
	return tag, b[i : i+n], b[i+n:]
}

var aacRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseASC reads the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
func parseASC(b []byte, a *Audio) {
	br := bitReader{b: b}
	aot := br.bits(5)
	if aot == 31 {
		aot = 32 + br.bits(6)
	}
	idx := br.bits(4)
	rate := 0
	if idx == 15 {
		rate = int(br.bits(24))
	} else if int(idx) < len(aacRates) {
		rate = aacRates[idx]
	}
	ch := br.bits(4)
	if br.bad {
		return
	}
	a.ObjectType = int(aot)
	a.Profile = aacProfile(int(aot))
	if rate > 0 {
		a.SampleRate = rate
	}
	if ch > 0 && ch < 8 {
		a.Channels = []int{0, 1, 2, 3, 4, 5, 6, 8}[ch]
	}
}

// aacProfile names an audio object type as ffprobe's profile field does.
func aacProfile(aot int) string {
	switch aot {
	case 1:
		return "Main"
	case 2:
		return "LC"
	case 3:
		return "SSR"
	case 4:
		return "LTP"
	case 5:
		return "HE-AAC"
	case 29:
		return "HE-AACv2"
	case 23:
		return "LD"
	case 39:
		return "ELD"
	}
	return fmt.Sprintf("object type %d", aot)
}
