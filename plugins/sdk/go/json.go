package helios

import (
	"bytes"
	"errors"
)

// ErrNotJSONObject is returned by JSONField when the value is not one valid
// JSON object (RFC 8259), or nests deeper than MaxJSONDepth.
var ErrNotJSONObject = errors.New("value is not a JSON object")

// MaxJSONDepth bounds the nesting JSONField accepts.
const MaxJSONDepth = 64

// JSONField returns the raw JSON text of the top-level member name of the
// JSON object in value, without allocating. Member names are compared after
// decoding their escapes; when a name repeats, the last member wins. The
// whole value is validated. Every SDK implements exactly these rules, so an
// operator behaves the same in any language.
func JSONField(value []byte, name string) (raw []byte, found bool, err error) {
	p := jsonParser{b: value}
	p.ws()
	if !p.eat('{') {
		return nil, false, ErrNotJSONObject
	}
	p.ws()
	if !p.eat('}') {
		for {
			ks := p.i
			if !p.str() {
				return nil, false, ErrNotJSONObject
			}
			key := value[ks:p.i]
			p.ws()
			if !p.eat(':') {
				return nil, false, ErrNotJSONObject
			}
			p.ws()
			vs := p.i
			if !p.value(1) {
				return nil, false, ErrNotJSONObject
			}
			if jsonStringEquals(key, name) {
				raw, found = value[vs:p.i], true
			}
			p.ws()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return nil, false, ErrNotJSONObject
			}
			p.ws()
		}
	}
	p.ws()
	if p.i != len(value) {
		return nil, false, ErrNotJSONObject
	}
	return raw, found, nil
}

// AppendJSONString appends s as a JSON string literal to dst, escaping
// only '"', '\', newline (as \n) and the other control bytes (as \u00XX);
// other bytes are kept as they are. Every SDK's encoder writes the same
// bytes, so an operator's output is the same in every language.
func AppendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// JSONString decodes raw (a JSON string literal as returned by JSONField)
// and appends its text to dst. ok is false when raw is not a string. A lone
// surrogate escape decodes to U+FFFD; other bytes are kept as they are.
func JSONString(dst, raw []byte) (text []byte, ok bool) {
	if p := (jsonParser{b: raw}); !p.str() || p.i != len(raw) {
		return dst, false
	}
	for i := 1; i < len(raw)-1; i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := hex4(raw[i+3:]); lo >= 0xdc00 && lo < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					i += 6
				}
			}
			if r >= 0xd800 && r < 0xe000 {
				r = 0xfffd
			}
			dst = appendUTF8(dst, r)
		default: // " \ /
			dst = append(dst, raw[i])
		}
	}
	return dst, true
}

// JSONCompact appends raw without the whitespace outside its strings.
func JSONCompact(dst, raw []byte) []byte {
	inStr := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inStr:
			dst = append(dst, c)
			if c == '\\' {
				i++
				dst = append(dst, raw[i])
			} else if c == '"' {
				inStr = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			inStr = c == '"'
			dst = append(dst, c)
		}
	}
	return dst
}

// jsonStringEquals reports whether the JSON string literal raw decodes to s.
func jsonStringEquals(raw []byte, s string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == s
	}
	keyScratch, _ = JSONString(keyScratch[:0], raw)
	return string(keyScratch) == s
}

var keyScratch []byte

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func appendUTF8(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xc0|byte(r>>6), 0x80|byte(r)&0x3f)
	case r < 0x10000:
		return append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	default:
		return append(dst, 0xf0|byte(r>>18), 0x80|byte(r>>12)&0x3f, 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
}

// jsonParser validates JSON text (RFC 8259) by recursive descent.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '{' || c == '[':
		if depth >= MaxJSONDepth {
			return false
		}
		return p.container(depth + 1)
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	default:
		return p.num()
	}
}

func (p *jsonParser) container(depth int) bool {
	obj := p.b[p.i] == '{'
	end := byte(']')
	if obj {
		end = '}'
	}
	p.i++
	p.ws()
	if p.eat(end) {
		return true
	}
	for {
		if obj {
			if !p.str() {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
		}
		if !p.value(depth) {
			return false
		}
		p.ws()
		if p.eat(end) {
			return true
		}
		if !p.eat(',') {
			return false
		}
		p.ws()
	}
}

func (p *jsonParser) str() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i >= len(p.b) {
				return false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 0; k < 4; k++ {
					if p.i >= len(p.b) || !isHex(p.b[p.i]) {
						return false
					}
					p.i++
				}
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

func (p *jsonParser) digits() bool {
	s := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > s
}

func (p *jsonParser) num() bool {
	p.eat('-')
	if p.eat('0') {
	} else if p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9' {
		p.digits()
	} else {
		return false
	}
	if p.eat('.') && !p.digits() {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}
