//! Test corpora for moving from a VAN: webhooks that vary the way Ingram's do (optional fields
//! present or not, one to four lines, mixed-case names, several order types, carriers and units)
//! and the 850 archive a VAN with a given layout would have delivered for them. A layout is
//! stated as a mapping (`tests/data/van/NAME/van.toml`), so the archives differ in everything a
//! mapping can state: envelope, delimiters, line breaks, segment sets, qualifiers, codes, case,
//! date formats, padding. The tests and the `learn` bench use it; the learner never sees the layout file.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::mapping::Mapping;
use crate::to_erp::to_850::{self, ControlNumbers};

/// A deterministic xorshift generator.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const WORDS: [&str; 16] = [
    "Acme",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Proseware",
    "Adatum",
    "Wingtip",
    "Lucerne",
    "Coho",
    "Margie",
    "Trey",
    "Humongous",
    "Alpine",
    "Blue",
];
const KINDS: [&str; 6] = [
    "Receiving",
    "Logistics",
    "Systems",
    "Corp",
    "Labs",
    "Holdings",
];
const PEOPLE: [&str; 8] = [
    "Dana Smith",
    "Lee Chen",
    "Ana Ruiz",
    "Sam Patel",
    "Kim Novak",
    "Joe Brown",
    "Eva Lind",
    "Max Weber",
];
const CITIES: [(&str, &str, &str); 6] = [
    ("Santa Ana", "CA", "92705"),
    ("Irvine", "CA", "92612"),
    ("Austin", "TX", "78701"),
    ("Buffalo", "NY", "14202"),
    ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"),
];
const PRODUCTS: [&str; 8] = [
    "Managed switch 24 port",
    "Rack kit 2U",
    "Laptop 14in business",
    "USB-C dock",
    "Monitor 27in IPS",
    "Wireless access point",
    "Patch cable 3m",
    "Server memory 32GB",
];

fn address(rng: &mut XorShift, full: bool) -> Value {
    let mut a = Map::new();
    let name = format!("{} {}", rng.pick(&WORDS), rng.pick(&KINDS));
    a.insert("companyName".into(), json!(name));
    if full && rng.chance(70) {
        a.insert("contact".into(), json!(rng.pick(&PEOPLE)));
    }
    a.insert(
        "addressLine1".into(),
        json!(format!("{} {} St", 1 + rng.below(999), rng.pick(&WORDS))),
    );
    if rng.chance(30) {
        a.insert(
            "addressLine2".into(),
            json!(format!("Suite {}", 1 + rng.below(400))),
        );
    }
    let (city, state, zip) = CITIES[rng.below(CITIES.len() as u64) as usize];
    a.insert("city".into(), json!(city));
    a.insert("state".into(), json!(state));
    a.insert("postalCode".into(), json!(zip));
    a.insert("countryCode".into(), json!("US"));
    if full && rng.chance(50) {
        a.insert(
            "phoneNumber".into(),
            json!(format!("714-555-{:04}", rng.below(10000))),
        );
    }
    if full && rng.chance(40) {
        a.insert("email".into(), json!("orders@example.com"));
    }
    Value::Object(a)
}

/// The webhook for PO number `n` (seeded by `n`): one PO whose optional fields come and go.
pub fn webhook(n: u64) -> Value {
    let mut rng = XorShift::new(n + 1);
    let day = 1 + rng.below(28);
    let mut po = Map::new();
    header_fields(&mut rng, n, day, &mut po);
    po.insert("shipToInfo".into(), address(&mut rng, true));
    po.insert("billToInfo".into(), address(&mut rng, false));
    if rng.chance(40) {
        po.insert("endUserInfo".into(), address(&mut rng, true));
    }
    if rng.chance(30) {
        po.insert("resellerInfo".into(), address(&mut rng, true));
    }
    let count = 1 + rng.below(4);
    let lines: Vec<Value> = (1..=count).map(|i| line(&mut rng, i)).collect();
    po.insert("lines".into(), Value::Array(lines));
    json!({
        "topic": "vendors/purchaseorders",
        "event": "im::vendorpocreate",
        "eventTimeStamp": format!("2026-11-{day:02}T12:00:00Z"),
        "eventid": format!("EV{n:08}"),
        "resource": [Value::Object(po)],
    })
}

/// The PO's own fields, before its addresses: number, date, references, terms, carrier, notes.
fn header_fields(rng: &mut XorShift, n: u64, day: u64, po: &mut Map<String, Value>) {
    po.insert("eventType".into(), json!("im::new_purchaseorder"));
    po.insert("ingramPurchaseOrderNumber".into(), json!(po_number(n)));
    po.insert(
        "ingramPurchaseOrderDate".into(),
        json!(format!("2026-11-{day:02}T{:02}:15:00Z", rng.below(24))),
    );
    po.insert(
        "resellerOrderNumber".into(),
        json!(format!("RSL-{}", 10000 + rng.below(90000))),
    );
    po.insert(
        "orderType".into(),
        json!(rng.pick(&["im::commercial", "im::government", "im::education"])),
    );
    if rng.chance(50) {
        po.insert(
            "vendorQuoteNumber".into(),
            json!(format!("Q-2026-{:04}", rng.below(10000))),
        );
    }
    if rng.chance(60) {
        po.insert("paymentTerms".into(), json!(rng.pick(&["30", "60", "90"])));
    }
    po.insert(
        "currencyCode".into(),
        json!(rng.pick(&["USD", "USD", "CAD"])),
    );
    if rng.chance(30) {
        po.insert(
            "specialBidNumber".into(),
            json!(format!("SB-{}", rng.below(10000))),
        );
    }
    if rng.chance(75) {
        po.insert(
            "shipVia".into(),
            json!(rng.pick(&["UPS Ground", "FedEx 2Day", "UPS Next Day Air"])),
        );
    }
    if rng.chance(50) {
        po.insert(
            "requestedDeliveryDate".into(),
            json!(format!("2026-12-{:02}", 1 + rng.below(28))),
        );
    }
    if rng.chance(35) {
        po.insert(
            "notes".into(),
            json!(format!(
                "Deliver to dock {}. Call before arrival.",
                rng.below(9)
            )),
        );
    }
}

/// Line `i` of a PO.
fn line(rng: &mut XorShift, i: u64) -> Value {
    let mut l = Map::new();
    l.insert("ingramLineNumber".into(), json!(i.to_string()));
    l.insert(
        "ingramPartNumber".into(),
        json!(format!("{}HW{:03}", rng.below(10), rng.below(1000))),
    );
    l.insert(
        "vendorPartNumber".into(),
        json!(format!("VP-{:05}", rng.below(100000))),
    );
    if rng.chance(50) {
        l.insert(
            "upcCode".into(),
            json!(format!("0{:011}", rng.below(100_000_000_000))),
        );
    }
    if rng.chance(85) {
        l.insert("description".into(), json!(rng.pick(&PRODUCTS)));
    }
    l.insert("quantity".into(), json!(1 + rng.below(50)));
    l.insert(
        "unitOfMeasure".into(),
        json!(rng.pick(&["EA", "EA", "EACH", "BX"])),
    );
    l.insert(
        "unitPrice".into(),
        json!(format!("{}.{:02}", 1 + rng.below(900), rng.below(100))),
    );
    if rng.chance(40) {
        l.insert(
            "requestedShipDate".into(),
            json!(format!("2026-12-{:02}", 1 + rng.below(28))),
        );
    }
    Value::Object(l)
}

/// The PO number of corpus PO `n`.
pub fn po_number(n: u64) -> String {
    format!("45{:08}", 10_000 + n)
}

/// The 850 the VAN whose layout is `van` delivered for corpus PO `n` (control numbers and the
/// envelope's date and time vary with `n`).
pub fn van_850(van: &Mapping, n: u64) -> Result<Vec<u8>, CorpusError> {
    let event = crate::ingram::order::decode(&webhook(n), &van.webhook)
        .map_err(|error| CorpusError::Webhook { n, error })?;
    let po = &event.orders[0];
    let numbers = ControlNumbers {
        isa13: 7000 + n as u32,
        gs06: 3000 + n as u32,
        st02: 1 + (n % 9000) as u32,
    };
    let at = OffsetDateTime::from_unix_timestamp(1_795_000_000 + 3_607 * n as i64)
        .map_err(|_| CorpusError::Date { n })?;
    to_850::render(po, van, numbers, at).map_err(|error| CorpusError::Render { n, error })
}

/// Why a corpus PO could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus webhook {n}: {error}")]
    Webhook {
        n: u64,
        error: crate::ingram::order::FieldError,
    },
    #[error("corpus PO {n}: its date is out of range")]
    Date { n: u64 },
    #[error("corpus PO {n}: {error}")]
    Render { n: u64, error: to_850::RenderError },
    #[error("cannot write into {}: {error}", .path.display())]
    Write {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("corpus webhook {n}: {error}")]
    Json { n: u64, error: serde_json::Error },
}

/// Writes corpus POs `range` into `dir`: `archive/PO.850` and `webhooks/PO.json`.
pub fn write(
    van: &Mapping,
    range: std::ops::Range<u64>,
    dir: &std::path::Path,
) -> Result<(), CorpusError> {
    let io = |error| CorpusError::Write {
        path: dir.to_path_buf(),
        error,
    };
    std::fs::create_dir_all(dir.join("archive")).map_err(io)?;
    std::fs::create_dir_all(dir.join("webhooks")).map_err(io)?;
    for n in range {
        let po = po_number(n);
        std::fs::write(
            dir.join("archive").join(format!("{po}.850")),
            van_850(van, n)?,
        )
        .map_err(io)?;
        let text = serde_json::to_string_pretty(&webhook(n))
            .map_err(|error| CorpusError::Json { n, error })?;
        std::fs::write(dir.join("webhooks").join(format!("{po}.json")), text + "\n").map_err(io)?;
    }
    Ok(())
}
