//! A top-level field of a JSON object, without allocating. The rules are
//! the same in every helios SDK (see the Go SDK's JSONField), so operators
//! behave identically whatever their language: the whole value is validated
//! (RFC 8259, nesting up to [`MAX_DEPTH`]), member names are compared after
//! decoding escapes, and the last of repeated members wins.

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// The value is not one valid JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnObject;

/// The raw JSON text of member `name` of the object in `value`.
pub fn field<'a>(value: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, NotAnObject> {
    let mut p = Parser { b: value, i: 0 };
    let mut found = None;
    p.ws();
    if !p.eat(b'{') {
        return Err(NotAnObject);
    }
    p.ws();
    if !p.eat(b'}') {
        loop {
            let ks = p.i;
            if !p.string() {
                return Err(NotAnObject);
            }
            let key = &value[ks..p.i];
            p.ws();
            if !p.eat(b':') {
                return Err(NotAnObject);
            }
            p.ws();
            let vs = p.i;
            if !p.value(1) {
                return Err(NotAnObject);
            }
            if string_equals(key, name.as_bytes()) {
                found = Some(&value[vs..p.i]);
            }
            p.ws();
            if p.eat(b'}') {
                break;
            }
            if !p.eat(b',') {
                return Err(NotAnObject);
            }
            p.ws();
        }
    }
    p.ws();
    if p.i != value.len() {
        return Err(NotAnObject);
    }
    Ok(found)
}

/// Appends `s` as a JSON string literal to `dst`, escaping only '"', '\',
/// newline (as \n) and the other control bytes (as \u00XX); other bytes
/// are kept as they are. Every SDK's encoder writes the same bytes.
#[inline]
pub fn append_string(dst: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    dst.push(b'"');
    let mut run = 0;
    for (i, &c) in s.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        dst.extend_from_slice(&s[run..i]);
        run = i + 1;
        match c {
            b'"' | b'\\' => dst.extend_from_slice(&[b'\\', c]),
            b'\n' => dst.extend_from_slice(b"\\n"),
            _ => dst.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
        }
    }
    dst.extend_from_slice(&s[run..]);
    dst.push(b'"');
}

/// Decodes the JSON string literal `raw` and appends its text to `dst`;
/// false when `raw` is not a string. Lone surrogate escapes become U+FFFD;
/// other bytes are kept as they are.
pub fn string(dst: &mut Vec<u8>, raw: &[u8]) -> bool {
    let mut p = Parser { b: raw, i: 0 };
    if !p.string() || p.i != raw.len() {
        return false;
    }
    let mut i = 1;
    while i < raw.len() - 1 {
        let c = raw[i];
        i += 1;
        if c != b'\\' {
            dst.push(c);
            continue;
        }
        let e = raw[i];
        i += 1;
        match e {
            b'b' => dst.push(8),
            b'f' => dst.push(12),
            b'n' => dst.push(b'\n'),
            b'r' => dst.push(b'\r'),
            b't' => dst.push(b'\t'),
            b'u' => {
                let mut r = hex4(&raw[i..]);
                i += 4;
                if (0xd800..0xdc00).contains(&r) && i + 6 <= raw.len() - 1 && raw[i] == b'\\' && raw[i + 1] == b'u' {
                    let lo = hex4(&raw[i + 2..]);
                    if (0xdc00..0xe000).contains(&lo) {
                        r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
                        i += 6;
                    }
                }
                if (0xd800..0xe000).contains(&r) {
                    r = 0xfffd;
                }
                let mut tmp = [0u8; 4];
                dst.extend_from_slice(char::from_u32(r).unwrap_or('\u{fffd}').encode_utf8(&mut tmp).as_bytes());
            }
            _ => dst.push(e),
        }
    }
    true
}

/// Appends `raw` without the whitespace outside its strings.
pub fn compact(dst: &mut Vec<u8>, raw: &[u8]) {
    let mut in_str = false;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if in_str {
            dst.push(c);
            if c == b'\\' && i + 1 < raw.len() {
                i += 1;
                dst.push(raw[i]);
            } else if c == b'"' {
                in_str = false;
            }
        } else if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            in_str = c == b'"';
            dst.push(c);
        }
        i += 1;
    }
}

fn string_equals(raw: &[u8], s: &[u8]) -> bool {
    if !raw.contains(&b'\\') {
        return &raw[1..raw.len() - 1] == s;
    }
    let mut t = Vec::new();
    string(&mut t, raw);
    t == s
}

fn hex4(b: &[u8]) -> u32 {
    b[..4].iter().fold(0, |r, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => c - b'A' + 10,
        };
        r << 4 | d as u32
    })
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            None => false,
            Some(b'"') => self.string(),
            Some(b'{' | b'[') => depth < MAX_DEPTH && self.container(depth + 1),
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            Some(b'n') => self.lit(b"null"),
            Some(_) => self.number(),
        }
    }
    fn container(&mut self, depth: usize) -> bool {
        let obj = self.b[self.i] == b'{';
        let end = if obj { b'}' } else { b']' };
        self.i += 1;
        self.ws();
        if self.eat(end) {
            return true;
        }
        loop {
            if obj {
                if !self.string() {
                    return false;
                }
                self.ws();
                if !self.eat(b':') {
                    return false;
                }
                self.ws();
            }
            if !self.value(depth) {
                return false;
            }
            self.ws();
            if self.eat(end) {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
            self.ws();
        }
    }
    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return true,
                0..=0x1f => return false,
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                    Some(b'u') => {
                        self.i += 1;
                        for _ in 0..4 {
                            match self.peek() {
                                Some(h) if h.is_ascii_hexdigit() => self.i += 1,
                                _ => return false,
                            }
                        }
                    }
                    _ => return false,
                },
                _ => {}
            }
        }
        false
    }
    fn lit(&mut self, s: &[u8]) -> bool {
        if self.b[self.i..].starts_with(s) {
            self.i += s.len();
            true
        } else {
            false
        }
    }
    fn digits(&mut self) -> bool {
        let s = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i > s
    }
    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') {
            match self.peek() {
                Some(b'1'..=b'9') => {
                    self.digits();
                }
                _ => return false,
            }
        }
        if self.eat(b'.') && !self.digits() {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.digits() {
                return false;
            }
        }
        true
    }
}
