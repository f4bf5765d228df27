//! ASCII-upper-cases each record's value and keeps its key.

use helios::{Emitter, Error, Record};

fn upper(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    out.emit(r.key, &r.value.to_ascii_uppercase());
    Ok(())
}

helios::operator!(upper);
