//! A schema migrator (`helios_migrate`, abi.md "Schema migrators"): it
//! migrates orders from version 2 (order_id, amount, customer_id) to
//! version 3, where amount, a decimal number of currency units, becomes
//! amount_cents, an integer number of cents. The Go example of the same name
//! emits byte-identical records (plugins/conformance).

use helios::{json, Emitter, Error, Record};

fn field<'a>(value: &'a [u8], name: &str) -> Result<&'a [u8], Error> {
    match json::field(value, name) {
        Err(_) => Err(Error::invalid_input("the record is not a JSON object")),
        Ok(None) => Err(Error::invalid_input(format!("the record has no {}", name))),
        Ok(Some(raw)) => Ok(raw),
    }
}

fn cents(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    let id = field(r.value, "order_id")?;
    let amount = field(r.value, "amount")?;
    let customer = field(r.value, "customer_id")?;
    let f: f64 = match std::str::from_utf8(amount).ok().and_then(|s| s.parse().ok()) {
        Some(f) => f,
        None => return Err(Error::invalid_input("amount is not a number")),
    };
    let c = (f * 100.0).round(); // half away from zero, as Go's math.Round
    if !(c.abs() <= 9007199254740992.0) {
        return Err(Error::invalid_input("amount is out of range"));
    }
    let mut b = Vec::with_capacity(r.value.len() + 16);
    b.extend_from_slice(b"{\"order_id\":");
    json::compact(&mut b, id);
    b.extend_from_slice(b",\"amount_cents\":");
    b.extend_from_slice((c as i64).to_string().as_bytes());
    b.extend_from_slice(b",\"customer_id\":");
    json::compact(&mut b, customer);
    b.push(b'}');
    out.emit(&[], &b);
    Ok(())
}

helios::migrator!(cents);
