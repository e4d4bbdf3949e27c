//! Tests of moving from a VAN on the four corpora in `tests/data/van/`: each layout's archive
//! (`learn/` and `check/`, with the webhooks of the same POs) is regenerated from its
//! `van.toml` and must match the files; `learn` on `learn/` must reproduce its own POs and then
//! every PO of `check/`, which it never saw; `compare` names the first difference and its key.
//! `UPDATE_VAN_CORPORA=1 cargo test --lib migrate` rewrites the files.

use std::path::{Path, PathBuf};

use super::compare::{self, Verdict};
use super::{corpus, learn, X12File};
use crate::mapping::Mapping;

const LAYOUTS: [&str; 4] = ["classic", "pipes", "bare-newline", "padded"];
const LEARN: std::ops::Range<u64> = 0..30;
const CHECK: std::ops::Range<u64> = 1000..1015;

fn dir(layout: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/van")
        .join(layout)
}

fn van(layout: &str) -> Mapping {
    Mapping::load(&dir(layout).join("van.toml")).unwrap()
}

fn archive_and_pos(at: &Path) -> (Vec<(PathBuf, X12File)>, Vec<crate::domain::PurchaseOrder>) {
    let (archive, problems) = learn::read_archive(&at.join("archive")).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let (pos, problems) = compare::webhook_pos(&at.join("webhooks"), &Mapping::builtin()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    (archive, pos.into_iter().map(|(_, po)| po).collect())
}

#[test]
fn the_corpora_are_what_their_layouts_write() {
    for layout in LAYOUTS {
        let van = van(layout);
        for (sub, range) in [("learn", LEARN), ("check", CHECK)] {
            let at = dir(layout).join(sub);
            if std::env::var_os("UPDATE_VAN_CORPORA").is_some() {
                let _ = std::fs::remove_dir_all(&at);
                corpus::write(&van, range.clone(), &at).unwrap();
            }
            for n in range {
                let po = corpus::po_number(n);
                let on_disk = std::fs::read(at.join("archive").join(format!("{po}.850")))
                    .unwrap_or_else(|e| panic!("{layout}/{sub}/{po}: {e} (UPDATE_VAN_CORPORA=1)"));
                assert_eq!(
                    on_disk,
                    corpus::van_850(&van, n).unwrap(),
                    "{layout}/{sub}/{po}"
                );
            }
        }
    }
}

#[test]
fn the_layouts_differ_in_envelope_delimiters_segments_and_padding() {
    let first = |layout: &str| {
        let (archive, _) = learn::read_archive(&dir(layout).join("learn/archive")).unwrap();
        archive[0].1.clone()
    };
    let (a, b, c) = (first("classic"), first("pipes"), first("bare-newline"));
    assert_eq!((a.element, a.terminator, a.line_break), (b'*', b'~', "\n"));
    assert_eq!(
        (b.element, b.terminator, b.line_break),
        (b'|', b'~', "\r\n")
    );
    assert_eq!((c.element, c.terminator, c.line_break), (b'^', b'\n', ""));
    assert_eq!(b.repetition, Some(b'^'));
    assert_eq!(b.segments[0][12], "00501");
    assert_eq!(c.segments[1][8], "004010VICS");
    assert!(b.first("CSH").is_some() && a.first("CSH").is_none());
    assert!(a.first("CUR").is_some() && b.first("CUR").is_none());
    assert!(b.first("TD5").is_none() && b.first("ITD").is_none());
    let d = first("padded");
    assert_eq!((d.element, d.terminator, d.line_break), (b'*', b'~', ""));
    assert_eq!(d.component, b':');
    assert_eq!(d.first("PO1").map(|s| s[1].as_str()), Some("001"));
    assert!(d.first("PID").is_none() && a.first("PID").is_some());
}

#[test]
fn learn_reaches_full_parity_on_pos_it_did_not_learn_from() {
    for layout in LAYOUTS {
        let (archive, pos) = archive_and_pos(&dir(layout).join("learn"));
        let (learned, failures) = learn::learn_and_verify(&archive, &pos);
        assert!(
            failures.is_empty(),
            "{layout}: learned mapping differs on its own archive: {failures:#?}\n{}",
            learned.toml
        );
        let mapping = Mapping::from_str(&learned.toml, Path::new("learned.toml")).unwrap();
        let (vans, problems) = compare::van_850s(&dir(layout).join("check/archive")).unwrap();
        assert!(problems.is_empty());
        let (check, _) =
            compare::webhook_pos(&dir(layout).join("check/webhooks"), &mapping).unwrap();
        let reports = compare::compare(&mapping, &check, &vans);
        let lines: Vec<String> = reports.iter().map(compare::line).collect();
        assert_eq!(
            compare::tally(&reports),
            (CHECK.count(), CHECK.count()),
            "{layout}: {lines:#?}\n{}",
            learned.toml
        );
    }
}

#[test]
fn learn_comments_its_evidence_and_reports_what_it_guessed() {
    let (archive, pos) = archive_and_pos(&dir("classic").join("learn"));
    let learned = learn::learn(&archive, &pos);
    assert!(
        learned
            .toml
            .contains("# ISA05 ZZ in 30 of 30 files\nsender_qualifier = \"ZZ\""),
        "{}",
        learned.toml
    );
    assert!(learned.toml.contains("sender_id = \"INGRAMMICRO\""));
    let (archive4, pos4) = archive_and_pos(&dir("bare-newline").join("learn"));
    let four = learn::learn(&archive4, &pos4);
    assert!(
        four.toml.contains("decimals in") && four.toml.contains("\nprice_decimals = 4\n"),
        "{}",
        four.toml
    );
    assert!(
        learned
            .toml
            .contains("# N1*ST names the webhook's ship_to in 30 paired files"),
        "{}",
        learned.toml
    );
    // From the archive alone: the envelope and the constants, and a report of the guesses.
    let alone = learn::learn(&archive, &[]);
    assert!(alone.toml.contains("receiver_id = \"ACMEERP\""));
    assert!(
        alone.toml.contains("# Always there (in all 30 files):"),
        "{}",
        alone.toml
    );
    assert!(
        alone.report.iter().any(|r| r.contains("guessed")),
        "{:?}",
        alone.report
    );
}

#[test]
fn learn_finds_fixed_width_elements_and_compare_names_po850_pad() {
    let (archive, pos) = archive_and_pos(&dir("padded").join("learn"));
    let first = &archive[0].1;
    assert_eq!(first.line_break, "");
    let po1 = first.first("PO1").unwrap();
    assert_eq!(
        (po1[1].as_str(), po1[9].as_str()),
        ("001", &*format!("{:<10}", po1[9].trim()))
    );
    let (learned, failures) = learn::learn_and_verify(&archive, &pos);
    assert!(failures.is_empty(), "{failures:#?}\n{}", learned.toml);
    for (element, width, fill, side) in [
        ("PO101", 3, "0", "left"),
        ("PO102", 5, "0", "left"),
        ("PO109", 10, " ", "right"),
    ] {
        let entry = format!(
            "element = \"{element}\"\nwidth = {width}\nfill = \"{fill}\"\nside = \"{side}\"\n"
        );
        assert!(learned.toml.contains(&entry), "{entry}\n{}", learned.toml);
    }
    assert!(
        learned.toml.contains(
            "# PO101 is the webhook's value filled with \"0\" on the left to 3 in 74 of 74 paired values"
        ),
        "{}",
        learned.toml
    );
    assert!(learned.report.is_empty(), "{:?}", learned.report);
    // No other layout pads anything.
    for layout in ["classic", "pipes", "bare-newline"] {
        let (archive, pos) = archive_and_pos(&dir(layout).join("learn"));
        assert!(!learn::learn(&archive, &pos).toml.contains("[[po850.pad]]"));
    }
    // Without its PO101 padding, the learned mapping differs in PO101 and compare says why.
    let mut unpadded = Mapping::from_str(&learned.toml, Path::new("learned.toml")).unwrap();
    unpadded.po850.pad.retain(|p| p.element != "PO101");
    let (vans, _) = compare::van_850s(&dir("padded").join("check/archive")).unwrap();
    let (check, _) =
        compare::webhook_pos(&dir("padded").join("check/webhooks"), &unpadded).unwrap();
    let reports = compare::compare(&unpadded, &check, &vans);
    assert_eq!(compare::tally(&reports), (0, CHECK.count()));
    let Verdict::Different { difference } = &reports[0].outcome else {
        panic!("{:?}", reports[0]);
    };
    assert_eq!(
        (
            difference.element.as_str(),
            difference.van.as_str(),
            difference.ours.as_str(),
            difference.key.as_str()
        ),
        ("PO101", "001", "1", "po850.pad"),
        "{difference}"
    );
    // A space-padded id narrower than the VAN's is a padding difference too.
    let mut narrow = Mapping::from_str(&learned.toml, Path::new("learned.toml")).unwrap();
    for p in &mut narrow.po850.pad {
        if p.element == "PO109" {
            p.width = 8;
        }
    }
    let reports = compare::compare(&narrow, &check, &vans);
    let Verdict::Different { difference } = &reports[0].outcome else {
        panic!("{:?}", reports[0]);
    };
    assert_eq!(
        (difference.element.as_str(), difference.key.as_str()),
        ("PO109", "po850.pad"),
        "{difference}"
    );
}

#[test]
fn learn_says_which_archived_po_it_cannot_reproduce() {
    let (mut archive, pos) = archive_and_pos(&dir("pipes").join("learn"));
    // One PO of the archive has a segment no mapping key writes.
    let (path, file) = &mut archive[3];
    let at = file.segments.iter().position(|s| s[0] == "PO1").unwrap();
    file.segments.insert(at, vec!["SAC".into(), "N".into()]);
    let name = path.display().to_string();
    let (learned, failures) = learn::learn_and_verify(&archive, &pos);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with(&name), "{failures:?}");
    assert!(failures[0].contains("SAC"), "{failures:?}");
    assert!(
        learned
            .report
            .iter()
            .any(|r| r.contains("SAC in 1 of 30 files")),
        "{:?}",
        learned.report
    );
}

#[test]
fn compare_names_the_first_difference_its_place_and_its_key() {
    let (vans, _) = compare::van_850s(&dir("classic").join("check/archive")).unwrap();
    let van = van("classic");
    let (pos, _) = compare::webhook_pos(&dir("classic").join("check/webhooks"), &van).unwrap();
    let reports = compare::compare(&van, &pos, &vans);
    assert_eq!(compare::tally(&reports), (15, 15));
    // The same layout in mixed case: the first N1's name differs, governed by po850.uppercase.
    let mut lower = van.clone();
    lower.po850.uppercase = false;
    let reports = compare::compare(&lower, &pos, &vans);
    let Verdict::Different { difference } = &reports[0].outcome else {
        panic!("{:?}", reports[0]);
    };
    assert_eq!(difference.key, "po850.uppercase", "{difference}");
    assert!(difference.position > 3, "{difference}");
    let mut other = van.clone();
    other.interchange.receiver_id = "OTHERERP".into();
    let reports = compare::compare(&other, &pos, &vans);
    let Verdict::Different { difference } = &reports[0].outcome else {
        panic!()
    };
    assert_eq!(
        (
            difference.element.as_str(),
            difference.position,
            difference.key.as_str()
        ),
        ("ISA08", 1, "interchange.receiver_id")
    );
    assert_eq!(difference.van, "ACMEERP        ");
    assert_eq!(compare::tally(&reports), (0, 15));
}

/// An 850 written by hand in the layout of the spec's illustrative 850 (x12-reference.md §3.4:
/// `*` `>` `~` and LF, N1*ST with a constant id, no DTM, no REF for the order type), not by our
/// writer, for PO `n`, and the webhook Ingram sent for it.
fn hand_written(n: u32) -> (String, serde_json::Value) {
    let po = format!("45123456{n:02}");
    let (qty, price, name) = [
        (5, "123.45", "Acme Corp Receiving"),
        (2, "9.90", "Northwind Logistics"),
        (12, "1.05", "Contoso Labs"),
    ][n as usize % 3];
    let total = crate::domain::Amount::parse(price)
        .unwrap()
        .times(qty)
        .to_string();
    let x12 = format!(
        "ISA*00*          *00*          *ZZ*INGRAMMICRO    *ZZ*VENDORERP      *250101*1200*U*00401*00000010{n}*0*P*>~\n\
         GS*PO*INGRAMMICRO*VENDORERP*20250101*1200*10{n}*X*004010~\n\
         ST*850*000{n}~\n\
         BEG*00*SA*{po}**2025010{n}~\n\
         CUR*BY*USD~\n\
         REF*CO*RESELLER-PO-7{n}~\n\
         ITD*01*3*****30*****NET 30~\n\
         N1*ST*{}*92*SHIP0001~\n\
         N3*{n}00 MAIN ST~\n\
         N4*SANTA ANA*CA*92705*US~\n\
         PO1*1*{qty}*EA*{price}*PE*VP*ABC-12{n}*BP*1A2B3{n}*UP*01234567890{n}~\n\
         PID*F****WIDGET 24 PORT SWITCH~\n\
         CTT*1*{qty}~\n\
         AMT*TT*{total}~\n\
         SE*13*000{n}~\n\
         GE*1*10{n}~\n\
         IEA*1*00000010{n}~\n",
        name.to_uppercase()
    );
    let webhook = serde_json::json!({
        "eventid": format!("E{n}"),
        "resource": [{
            "ingramPurchaseOrderNumber": po,
            "ingramPurchaseOrderDate": format!("2025-01-0{n}T10:00:00Z"),
            "resellerOrderNumber": format!("RESELLER-PO-7{n}"),
            "paymentTerms": "30",
            "currencyCode": "USD",
            "shipToInfo": {"companyName": name, "addressLine1": format!("{n}00 Main St"), "city": "Santa Ana", "state": "CA", "postalCode": "92705", "countryCode": "US"},
            "lines": [{"ingramLineNumber": "1", "ingramPartNumber": format!("1A2B3{n}"), "vendorPartNumber": format!("ABC-12{n}"), "upcCode": format!("01234567890{n}"), "description": "Widget 24 port switch", "quantity": qty, "unitOfMeasure": "EA", "unitPrice": price}]
        }]
    });
    (x12, webhook)
}

#[test]
fn learn_reproduces_a_layout_our_writer_did_not_write() {
    let decode = |v: &serde_json::Value| {
        crate::ingram::order::decode(v, &Mapping::builtin().webhook)
            .unwrap()
            .orders
            .remove(0)
    };
    let (mut archive, mut pos) = (Vec::new(), Vec::new());
    for n in 1..=2 {
        let (x12, webhook) = hand_written(n);
        archive.push((
            PathBuf::from(format!("{n}.850")),
            X12File::parse(x12.as_bytes()).unwrap(),
        ));
        pos.push(decode(&webhook));
    }
    let (learned, failures) = learn::learn_and_verify(&archive, &pos);
    assert!(failures.is_empty(), "{failures:#?}\n{}", learned.toml);
    let mapping = Mapping::from_str(&learned.toml, Path::new("learned.toml")).unwrap();
    let (x12, webhook) = hand_written(3);
    let van = X12File::parse(x12.as_bytes()).unwrap();
    let ours = compare::render_ours(&decode(&webhook), &mapping, &van).unwrap();
    assert_eq!(
        compare::first_difference(&van, &ours, &mapping),
        None,
        "{}",
        learned.toml
    );
    assert!(
        learned.toml.contains("id = \"SHIP0001\""),
        "{}",
        learned.toml
    );
}

#[test]
fn a_van_file_with_several_pos_is_compared_po_by_po() {
    let at = dir("classic").join("check/archive");
    let read = |po: &str| std::fs::read_to_string(at.join(format!("{po}.850"))).unwrap();
    let (one, two) = (read("4500011000"), read("4500011001"));
    let body = |t: &str| t[t.find("ST*").unwrap()..t.find("GE*").unwrap()].to_string();
    let both = format!(
        "{}{}{}GE*2*{}",
        &one[..one.find("ST*").unwrap()],
        body(&one),
        body(&two),
        &one[one.find("GE*").unwrap() + "GE*1*".len()..]
    );
    let file = X12File::parse(both.as_bytes()).unwrap();
    let parts = file.split();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].0, "4500011001");
    let mapping = van("classic");
    let alone = X12File::parse(two.as_bytes()).unwrap();
    assert_eq!(
        compare::first_difference(&alone, &parts[1].1, &mapping),
        None
    );
    assert_eq!(
        compare::first_difference(
            &X12File::parse(one.as_bytes()).unwrap(),
            &parts[0].1,
            &mapping
        ),
        None
    );
}

#[test]
fn a_mapping_given_to_learn_keeps_its_webhook_view_its_855_856_side_and_its_samples() {
    let text = format!(
        "{}\n[samples]\ndir = \"vendor-samples\"\n",
        crate::mapping::DEFAULT_MAPPING.replacen(
            "ship_to = \"shipToInfo\"",
            "ship_to = \"deliverTo\"",
            1
        )
    );
    let kept = learn::unlearned_sections(&text, Path::new("/etc/edi-bridge/mappings/vendor.toml"))
        .unwrap();
    assert!(kept.contains("ship_to = \"deliverTo\""), "{kept}");
    assert!(
        kept.contains("dir = \"/etc/edi-bridge/mappings/vendor-samples\""),
        "{kept}"
    );
    for section in [
        "[inbound]",
        "[po_response]",
        "[code_lists.ack_type]",
        "[ack997]",
    ] {
        assert!(kept.contains(section), "{section}: {kept}");
    }
    assert!(
        !kept.contains("[po850") && !kept.contains("[interchange]"),
        "{kept}"
    );
    // Learned onto it, the whole mapping loads and reads the webhook through it.
    let (archive, pos) = archive_and_pos(&dir("classic").join("learn"));
    let learned = learn::learn_onto(&archive, &pos, &kept);
    let m = Mapping::from_str(&learned.toml, Path::new("learned.toml")).unwrap();
    assert_eq!(m.webhook.ship_to, "deliverTo");
    assert!(learn::unlearned_sections("[webhook", Path::new("m.toml")).is_err());
}
