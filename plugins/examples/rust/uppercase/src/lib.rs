//! ASCII-upper-cases each record's value and keeps its key.

use helios::{Emitter, Error, Record};

fn upper(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    // Written straight into the output buffer: no intermediate copy.
    out.emit_with(r.key, r.value.len(), |v| {
        for (d, c) in v.iter_mut().zip(r.value) {
            *d = c.to_ascii_uppercase();
        }
    });
    Ok(())
}

helios::operator!(upper);
