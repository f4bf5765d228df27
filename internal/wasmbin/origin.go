package wasmbin

import (
	"bytes"
	"strings"
)

// SDKSection is the custom section in which helios SDKs name themselves
// ("rust/0.1.0"), so that `plugin inspect` can tell what built a module.
const SDKSection = "helios.sdk"

// Origin says what built a module, as far as the module tells.
type Origin struct {
	Language  string // e.g. "Rust"; "" when unrecognised
	SDK       string // the helios.sdk section, e.g. "rust/0.1.0"
	Toolchain string // from the producers section or the Go build id, e.g. "rustc 1.63.0"
	Evidence  string // how it was recognised
}

func (o Origin) String() string {
	if o.Language == "" {
		return "unrecognised (no helios.sdk, producers or Go build id section)"
	}
	s := o.Language
	var extra []string
	if o.SDK != "" {
		extra = append(extra, "helios SDK "+o.SDK)
	}
	if o.Toolchain != "" {
		extra = append(extra, o.Toolchain)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, "; ") + ")"
	}
	return s + ", from " + o.Evidence
}

var sdkLanguages = map[string]string{
	"go": "Go", "rust": "Rust", "c": "C", "cpp": "C++", "assemblyscript": "AssemblyScript", "zig": "Zig",
}

var producerLanguages = map[string]string{
	"Rust": "Rust", "C99": "C", "C11": "C", "C17": "C", "C_plus_plus": "C++", "C_plus_plus_14": "C++",
	"C_plus_plus_17": "C++", "C_plus_plus_20": "C++", "Zig": "Zig", "AssemblyScript": "AssemblyScript",
}

// DescribeOrigin recognises the language and toolchain that built wasm from
// its custom sections (helios.sdk, producers, go:buildid) and, failing
// those, from traces a toolchain leaves in the data section. clang lists in
// producers the languages of the objects it linked with debug information,
// so C++ shows as C unless libc++ was linked in.
func DescribeOrigin(wasm []byte) Origin {
	secs, err := sections(wasm)
	if err != nil {
		return Origin{}
	}
	var o Origin
	var evidence []string
	var data []byte
	for _, s := range secs {
		if s.id == secData {
			data = s.body
		}
		if s.id != secCustom {
			continue
		}
		r := &reader{b: s.body}
		name := string(r.name())
		body := s.body[r.pos:]
		if r.err != nil {
			continue
		}
		switch name {
		case SDKSection:
			o.SDK = string(body)
			lang, _, _ := strings.Cut(o.SDK, "/")
			if l, ok := sdkLanguages[lang]; ok {
				o.Language = l
			}
			evidence = append(evidence, "its helios.sdk section")
		case "go:buildid":
			o.Language, o.Toolchain = "Go", "go toolchain, GOOS=wasip1"
			evidence = append(evidence, "its Go build id")
		case "producers":
			lang, tools := producers(body)
			if o.Language == "" {
				o.Language = producerLanguages[lang]
			}
			if tools != "" {
				o.Toolchain = tools
			}
			evidence = append(evidence, "its producers section")
		}
	}
	if o.Language == "" && (bytes.Contains(data, []byte("library/core/src")) || bytes.Contains(data, []byte("/rustc/"))) {
		o.Language = "Rust"
		evidence = append(evidence, "Rust standard library paths in its data")
	}
	if o.Language == "" {
		return Origin{}
	}
	o.Evidence = strings.Join(evidence, " and ")
	return o
}

// producers reads the tool-conventions producers section: a vector of
// fields, each a name and a vector of (name, version).
func producers(b []byte) (language, tools string) {
	r := &reader{b: b}
	var processed []string
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		field := string(r.name())
		for m := r.u32(); m > 0 && r.err == nil; m-- {
			name, version := string(r.name()), string(r.name())
			switch field {
			case "language":
				// A C++ module also lists the C of libc: C++ wins.
				if language == "" || strings.HasPrefix(name, "C_plus_plus") {
					language = name
				}
			case "processed-by":
				processed = append(processed, strings.TrimSpace(name+" "+version))
			}
		}
	}
	return language, strings.Join(processed, ", ")
}
