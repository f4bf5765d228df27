//! Emits one record per word of each value (words are separated by ASCII
//! whitespace: space, \t, \n, \v, \f, \r), keeping the key.

use helios::{Emitter, Error, Record};

fn is_space(c: &u8) -> bool {
    matches!(c, b' ' | b'\t'..=b'\r')
}

fn split(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    for word in r.value.split(is_space).filter(|w| !w.is_empty()) {
        out.emit(r.key, word);
    }
    Ok(())
}

helios::operator!(split);
