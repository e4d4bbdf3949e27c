//! Tests of the codec: the golden runner over `tests/data/x12/{ok,err}` (regenerate with
//! `UPDATE_EXPECT=1`), writer unit tests, the `edi` crate as an oracle, a proptest round trip of
//! `Po850`, and a seeded no-panic test over random and mutated inputs.

use super::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x12");

fn seg_line(s: &Segment<'_>) -> String {
    let mut out = s.id().to_string();
    for e in s.elements() {
        out.push('*');
        out.push_str(&e);
    }
    out
}

fn typed(tx: &Transaction<'_>) -> (Value, Vec<Diagnostic>) {
    match tx.id.as_str() {
        "850" => {
            let (v, d) = Po850::parse(tx);
            (json!(v), d)
        }
        "855" => {
            let (v, d) = Ack855::parse(tx);
            (json!(v), d)
        }
        "856" => {
            let (v, d) = Asn856::parse(tx);
            (json!(v), d)
        }
        "997" => {
            let (v, d) = Ack997::parse(tx);
            (json!(v), d)
        }
        _ => (Value::Null, Vec::new()),
    }
}

/// JSON dump of a read; also returns (error count, diagnostic count) including typed parsers.
fn dump(input: &[u8]) -> (Value, usize, usize) {
    let doc = read(input, &ReadOptions::default());
    let mut errors = doc.errors().count();
    let mut total = doc.diagnostics.len();
    let mut ics = Vec::new();
    for ic in &doc.interchanges {
        let mut groups = Vec::new();
        for g in &ic.groups {
            let mut txs = Vec::new();
            for t in &g.transactions {
                let (tv, td) = typed(t);
                errors += td.iter().filter(|d| d.is_error()).count();
                total += td.len();
                txs.push(json!({
                    "id": t.id, "control_number": t.control_number,
                    "implementation_ref": t.implementation_ref, "index": t.index, "closed": t.closed,
                    "segments": t.segments.iter().map(seg_line).collect::<Vec<_>>(),
                    "typed": tv,
                    "typed_diagnostics": td.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                }));
            }
            let ack = Ack997::for_group(g, &doc.diagnostics, Version::V4010);
            groups.push(json!({
                "header": g.header, "index": g.index, "closed": g.closed, "synthetic": g.synthetic,
                "transactions": txs,
                "ack997": format!("{}|{}", ack.group_status,
                    ack.sets.iter().map(|s| s.status.clone()).collect::<Vec<_>>().join(",")),
            }));
        }
        let mut ic_json = json!({
            "header": ic.header,
            "delimiters": {
                "element": (ic.delimiters.element as char).to_string(),
                "component": (ic.delimiters.component as char).to_string(),
                "repetition": ic.delimiters.repetition.map(|r| (r as char).to_string()),
                "terminator": String::from_utf8_lossy(&ic.terminator),
            },
            "index": ic.index, "byte_offset": ic.byte_offset, "closed": ic.closed,
            "synthetic": ic.synthetic, "groups": groups,
        });
        if !ic.ta1.is_empty() {
            ic_json["ta1"] = json!(ic.ta1);
        }
        ics.push(ic_json);
    }
    let mut v = json!({
        "complete": doc.is_complete(),
        "diagnostics": doc.diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "interchanges": ics,
    });
    // What `strict_envelope` turns into errors, for the cases where it changes anything.
    let strict = ReadOptions {
        strict_envelope: true,
        ..ReadOptions::default()
    };
    let strict_errors: Vec<String> = read(input, &strict)
        .errors()
        .map(|d| d.to_string())
        .collect();
    if strict_errors.len() != doc.errors().count() {
        v["strict_errors"] = json!(strict_errors);
    }
    (v, errors, total)
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join(kind))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "edi"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn first_diff(a: &str, b: &str) -> String {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    for i in 0..al.len().max(bl.len()) {
        if al.get(i) != bl.get(i) {
            let lo = i.saturating_sub(2);
            let mut s = format!("first difference at line {}:\n", i + 1);
            for j in lo..(i + 3) {
                s.push_str(&format!(
                    "  expected {:>4}: {}\n  actual   {:>4}: {}\n",
                    j + 1,
                    al.get(j).unwrap_or(&"<eof>"),
                    j + 1,
                    bl.get(j).unwrap_or(&"<eof>")
                ));
            }
            return s;
        }
    }
    String::new()
}

#[test]
fn golden() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut n = 0;
    for kind in ["ok", "err"] {
        for path in cases(kind) {
            n += 1;
            let input = std::fs::read(&path).expect("read case");
            let (v, errors, total) = dump(&input);
            let name = path.display().to_string();
            if kind == "ok" && errors > 0 {
                failures.push(format!("{name}: ok case has {errors} error diagnostics"));
            }
            if kind == "err" && total == 0 {
                failures.push(format!("{name}: err case has no diagnostics"));
            }
            let actual = serde_json::to_string_pretty(&v).expect("json") + "\n";
            let exp_path = path.with_extension("json");
            if update {
                std::fs::write(&exp_path, &actual).expect("write expectation");
                continue;
            }
            match std::fs::read_to_string(&exp_path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{name}: output differs from {} (UPDATE_EXPECT=1 to accept)\n{}",
                    exp_path.display(),
                    first_diff(&expected, &actual)
                )),
                Err(_) => failures.push(format!(
                    "{name}: missing {} (run with UPDATE_EXPECT=1)",
                    exp_path.display()
                )),
            }
        }
    }
    assert!(n >= 40, "expected at least 40 golden cases, found {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn sample_isa() -> IsaHeader {
    IsaHeader {
        sender_qualifier: "ZZ".into(),
        sender_id: "INGRAMMICRO".into(),
        receiver_qualifier: "ZZ".into(),
        receiver_id: "VENDORERP".into(),
        date: "250101".into(),
        time: "1200".into(),
        control_number: "101".into(),
        ..IsaHeader::default()
    }
}

fn sample_gs() -> GsHeader {
    GsHeader {
        functional_id: "PO".into(),
        app_sender: "INGRAMMICRO".into(),
        app_receiver: "VENDORERP".into(),
        date: "20250101".into(),
        time: "1200".into(),
        control_number: "101".into(),
        agency: "X".into(),
        version: "004010".into(),
    }
}

#[test]
fn writer_reproduces_reference_850() {
    let input = std::fs::read(Path::new(DATA).join("ok/0001_850_basic.edi")).expect("case");
    let doc = read(&input, &ReadOptions::default());
    let tx = doc.transactions().next().expect("tx");
    let (po, d) = Po850::parse(tx);
    assert!(d.is_empty(), "{d:?}");
    let out = write(
        &sample_isa(),
        &[OutGroup {
            header: sample_gs(),
            transactions: vec![po.to_transaction("0001")],
        }],
        &WriteOptions {
            newline: true,
            crlf: false,
            ..WriteOptions::default()
        },
    )
    .expect("write");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&input)
    );
}

#[test]
fn writer_isa_is_fixed_width_and_5010() {
    let opts = WriteOptions {
        version: Version::V5010,
        delimiters: Delimiters {
            repetition: Some(b'^'),
            ..Delimiters::default()
        },
        ..WriteOptions::default()
    };
    let out = write(&sample_isa(), &[], &opts).expect("write");
    let s = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(s.find('~'), Some(105));
    assert_eq!(s.get(82..83), Some("^"));
    assert_eq!(s.get(84..89), Some("00501"));
    assert!(s.ends_with("IEA*0*000000101~"));
}

#[test]
fn writer_errors() {
    let mut isa = sample_isa();
    isa.sender_id = "X".repeat(16);
    assert!(matches!(
        write(&isa, &[], &WriteOptions::default()),
        Err(WriteError::IsaFieldTooLong { .. })
    ));
    let mut isa = sample_isa();
    isa.control_number = "12345678901".into();
    assert!(matches!(
        write(&isa, &[], &WriteOptions::default()),
        Err(WriteError::BadControlNumber { .. })
    ));
    let opts = WriteOptions {
        delimiters: Delimiters {
            element: b'*',
            component: b'*',
            repetition: None,
            segment: b'~',
        },
        ..WriteOptions::default()
    };
    assert!(matches!(
        write(&sample_isa(), &[], &opts),
        Err(WriteError::BadDelimiters(_))
    ));
    let tx = OutTransaction {
        id: "850".into(),
        control_number: "1".into(),
        implementation_ref: None,
        segments: vec![OutSegment::new("BEG")
            .el("00")
            .el("~*~")
            .el("PO-1")
            .el("")
            .el("20250101")],
    };
    let r = write(
        &sample_isa(),
        &[OutGroup {
            header: sample_gs(),
            transactions: vec![tx],
        }],
        &WriteOptions::default(),
    );
    assert!(
        matches!(r, Err(WriteError::MissingElement { element: 2, .. })),
        "{r:?}"
    );
    let e = WriteError::MissingElement {
        segment: "BEG".into(),
        element: 3,
    };
    assert_eq!(
        e.to_string(),
        "mandatory element BEG03 empty after sanitising"
    );
}

/// Writes one 850 body segment list; the error, if any.
fn write_850(segments: Vec<OutSegment>, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let tx = OutTransaction {
        id: "850".into(),
        control_number: "1".into(),
        implementation_ref: None,
        segments,
    };
    write(
        &sample_isa(),
        &[OutGroup {
            header: sample_gs(),
            transactions: vec![tx],
        }],
        opts,
    )
}

fn beg(po: &str) -> OutSegment {
    OutSegment::new("BEG")
        .el("00")
        .el("SA")
        .el(po)
        .el("")
        .el("20250101")
}

fn po1(number: &str, qty: &str, price: &str, vp: &str) -> OutSegment {
    OutSegment::new("PO1")
        .el(number)
        .el(qty)
        .el("EA")
        .el(price)
        .el("PE")
        .el("VP")
        .el(vp)
}

#[test]
fn numbers_are_written_exactly_or_refused_never_cut() {
    let o = WriteOptions::default();
    // The finding: a price of 18 integer digits was cut to PO104's 17 characters.
    let r = write_850(
        vec![beg("PO-1"), po1("1", "1", "999999999999999999.999999", "A")],
        &o,
    );
    match r {
        Err(WriteError::Inexact {
            segment,
            element: 4,
            problem,
            ..
        }) => {
            assert_eq!(segment, "PO1");
            assert!(
                problem.contains("24 digits") && problem.contains("17"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    // 17 digits fit (X12 counts neither the sign nor the decimal point), written as given.
    let out = write_850(
        vec![
            beg("PO-1"),
            po1("1", "123456789012345", "123456789012345.67", "A"),
        ],
        &o,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("PO1*1*123456789012345*EA*123456789012345.67*PE*VP*A~"),
        "{text}"
    );
    for (seg, value, element) in [
        (po1("1", "1234567890123456", "1", "A"), "quantity", 2),
        (
            OutSegment::new("CTT").el("1").el("12345678901"),
            "hash total",
            2,
        ),
        (
            OutSegment::new("AMT").el("TT").el("1234567890123456789"),
            "total",
            2,
        ),
        (OutSegment::new("CTT").el("1").el("1,5"), "not a number", 2),
    ] {
        let r = write_850(vec![beg("PO-1"), seg], &o);
        assert!(
            matches!(r, Err(WriteError::Inexact { element: e, .. }) if e == element),
            "{value}: {r:?}"
        );
    }
    // A mapping override shortens a numeric element: refused, not cut.
    let short = WriteOptions {
        max_lengths: vec![("PO1".into(), 4, 5)],
        ..WriteOptions::default()
    };
    assert!(write_850(vec![beg("PO-1"), po1("1", "1", "1234.56", "A")], &short).is_err());
    assert!(write_850(vec![beg("PO-1"), po1("1", "1", "123.45", "A")], &short).is_ok());
}

#[test]
fn identifiers_are_written_exactly_or_refused_never_altered() {
    let o = WriteOptions::default();
    // Not upper-cased (the ERP echoes them back), unlike free text.
    let out = write_850(vec![beg("im-po-1"), po1("ln-1", "1", "1", "abc-9")], &o).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("BEG*00*SA*im-po-1**20250101~"), "{text}");
    assert!(text.contains("PO1*ln-1*1*EA*1*PE*VP*abc-9~"), "{text}");
    let v5 = WriteOptions {
        version: Version::V5010,
        ..WriteOptions::default()
    };
    for (po, line, vp, opts, element, needle) in [
        ("IM*1", "1", "A", &o, 3, "element separator"),
        ("IM~1", "1", "A", &o, 3, "segment terminator"),
        ("IM>1", "1", "A", &o, 3, "component separator"),
        ("IM^1", "1", "A", &v5, 3, "repetition separator"),
        (
            "IM
1",
            "1",
            "A",
            &o,
            3,
            "control character",
        ),
        ("IMÉ1", "1", "A", &o, 3, "non-ASCII"),
        (&"P".repeat(23), "1", "A", &o, 3, "at most 22"),
        ("IM-1", "1*", "A", &o, 1, "element separator"),
        ("IM-1", "1", "XYZ-9*~>", &o, 7, "element separator"),
        ("IM-1", "1", &"V".repeat(49), &o, 7, "at most 48"),
    ] {
        let r = write_850(vec![beg(po), po1(line, "1", "1", vp)], opts);
        match r {
            Err(WriteError::Inexact {
                element: e,
                problem,
                ..
            }) if e == element => assert!(problem.contains(needle), "{po} {line} {vp}: {problem}"),
            other => panic!("{po} {line} {vp}: {other:?}"),
        }
    }
    // `^` is data in 004010 (no repetition separator there).
    assert!(write_850(vec![beg("IM^1"), po1("1", "1", "1", "A")], &o).is_ok());
    // Free text keeps being sanitised: delimiters become spaces, text is upper-cased and cut.
    let pid = OutSegment::new("PID")
        .el("F")
        .el("")
        .el("")
        .el("")
        .el(format!("rack *kit~ {}", "x".repeat(100)));
    let out = write_850(vec![beg("IM-1"), po1("1", "1", "1", "A"), pid], &o).unwrap();
    let text = String::from_utf8(out).unwrap();
    let line = text.split('~').find(|l| l.starts_with("PID")).unwrap();
    assert_eq!(line.len(), "PID*F****".len() + 80, "{line}");
    assert!(line.starts_with("PID*F****RACK  KIT  XXX"), "{line}");
}

#[test]
fn codes_from_outside_fit_their_length_or_are_refused_never_cut() {
    let o = WriteOptions::default();
    let uom = |u: &str| {
        OutSegment::new("PO1")
            .el("1")
            .el("1")
            .el(u)
            .el("1")
            .el("PE")
            .el("VP")
            .el("A")
    };
    let out = write_850(vec![beg("IM-1"), uom("ea")], &o).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("PO1*1*1*EA*1*PE*VP*A~"));
    for (seg, element, needle) in [
        (
            uom(&"U".repeat(500)),
            3,
            "500 characters, the element holds exactly 2",
        ),
        (uom("E"), 3, "exactly 2"),
        (
            OutSegment::new("N4").el("Irvine").el("California"),
            2,
            "exactly 2",
        ),
        (
            OutSegment::new("N4")
                .el("Irvine")
                .el("CA")
                .el("92612")
                .el("USAX"),
            4,
            "2 to 3",
        ),
        (OutSegment::new("CUR").el("BY").el("EURO"), 2, "exactly 3"),
    ] {
        match write_850(vec![beg("IM-1"), seg], &o) {
            Err(WriteError::Inexact {
                element: e,
                problem,
                ..
            }) if e == element => assert!(problem.contains(needle), "{problem}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fit_problem("Düsseldorf", &o, "N4", 1), None);
    assert_eq!(
        fit_problem(&format!("{}ß", "n".repeat(59)), &o, "N1", 2).as_deref(),
        Some("61 characters as written, the element holds 1 to 60")
    );
    assert!(fit_problem("1", &o, "N4", 3).unwrap().contains("3 to 15"));
}

#[test]
fn sanitize_rules() {
    let d = Delimiters::default();
    assert_eq!(
        sanitize("Café “Ø” – ß…", &d, None, true, None),
        "CAFE \"O\" - SS..."
    );
    assert_eq!(
        sanitize("a*b~c>d\r\ne\u{1}", &d, None, false, None),
        "a b c d  e"
    );
    assert_eq!(sanitize("漢字x", &d, None, true, None), "??X");
    assert_eq!(sanitize("abcdef ", &d, None, true, Some(3)), "ABC");
    let opts = WriteOptions::default();
    assert_eq!(writer_max("REF", 2, &opts), Some(30));
    let o5 = WriteOptions {
        version: Version::V5010,
        ..WriteOptions::default()
    };
    assert_eq!(writer_max("REF", 2, &o5), Some(50));
    let ov = WriteOptions {
        max_lengths: vec![("N1".into(), 2, 35)],
        ..WriteOptions::default()
    };
    assert_eq!(writer_max("N1", 2, &ov), Some(35));
    assert_eq!(writer_max("PO1", 7, &opts), Some(48));
}

fn writer_max(seg: &str, el: usize, o: &WriteOptions) -> Option<usize> {
    super::writer::max_len(o, seg, el)
}

#[test]
fn diagnostic_display() {
    let input =
        std::fs::read(Path::new(DATA).join("err/0008_se_count_mismatch.edi")).expect("case");
    for (strict, severity) in [(true, "error"), (false, "warning")] {
        let opts = ReadOptions {
            strict_envelope: strict,
            ..ReadOptions::default()
        };
        let doc = read(&input, &opts);
        let d = doc
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::SeCountMismatch)
            .expect("diag");
        let s = d.to_string();
        assert!(
            s.starts_with(&format!("{severity}: se01 says 7 segments, counted 13 (interchange 1, group 1, set 1, segment SE #15 in file, #13 in set, element 01, byte ")),
            "{s}"
        );
    }
}

#[test]
fn streaming_reader_events() {
    let input =
        std::fs::read(Path::new(DATA).join("ok/0023_multi_group_multi_set.edi")).expect("case");
    let mut txs = 0;
    let mut groups = 0;
    for ev in Reader::new(&input, &ReadOptions::default()) {
        match ev {
            ReadEvent::Transaction(_) => txs += 1,
            ReadEvent::GroupStart { .. } => groups += 1,
            _ => {}
        }
    }
    assert_eq!((txs, groups), (3, 2));
}

#[test]
fn ack997_for_group_and_back() {
    let input =
        std::fs::read(Path::new(DATA).join("err/0008_se_count_mismatch.edi")).expect("case");
    // By default a wrong SE01 is accepted with errors noted: AK5*E*4, AK9*E.
    let lenient = read(&input, &ReadOptions::default());
    let g = lenient
        .interchanges
        .first()
        .and_then(|i| i.groups.first())
        .expect("group");
    let ack = Ack997::for_group(g, &lenient.diagnostics, Version::V4010);
    assert_eq!(ack.group_status, "E");
    assert_eq!(
        ack.sets
            .first()
            .map(|s| (s.status.clone(), s.errors.clone())),
        Some(("E".to_string(), vec!["4".to_string()]))
    );
    // `strict_envelope` restores the rejection.
    let strict = ReadOptions {
        strict_envelope: true,
        ..ReadOptions::default()
    };
    let doc = read(&input, &strict);
    let g = doc
        .interchanges
        .first()
        .and_then(|i| i.groups.first())
        .expect("group");
    let ack = Ack997::for_group(g, &doc.diagnostics, Version::V4010);
    assert_eq!(ack.group_status, "R");
    assert_eq!(
        ack.sets.first().map(|s| s.errors.clone()),
        Some(vec!["4".to_string()])
    );
    let out = write(
        &sample_isa(),
        &[OutGroup {
            header: GsHeader {
                functional_id: "FA".into(),
                ..sample_gs()
            },
            transactions: vec![ack.to_transaction("0001")],
        }],
        &WriteOptions::default(),
    )
    .expect("write");
    let doc2 = read(&out, &ReadOptions::default());
    assert_eq!(doc2.errors().count(), 0);
    let (back, d) = Ack997::parse(doc2.transactions().next().expect("tx"));
    assert!(d.is_empty());
    assert_eq!(back, ack);
}

#[test]
fn asn_tree_and_ancestor() {
    let input = std::fs::read(Path::new(DATA).join("ok/0003_856_sopi.edi")).expect("case");
    let doc = read(&input, &ReadOptions::default());
    let (asn, d) = Asn856::parse(doc.transactions().next().expect("tx"));
    assert!(d.is_empty(), "{d:?}");
    let item = asn.nodes.iter().position(|n| n.id == "4").expect("item");
    let o = asn.ancestor(item, "O").expect("order");
    assert_eq!(
        asn.nodes
            .get(o)
            .and_then(|n| n.prf.as_ref())
            .map(|p| p.po_number.as_str()),
        Some("4512345678")
    );
    assert_eq!(asn.ancestor(item, "s"), Some(0));
    assert_eq!(asn.nodes.first().map(|n| n.children.clone()), Some(vec![1]));
}

// ---------------------------------------------------------------- oracle (edi crate, GPL, dev only)

#[test]
fn oracle_loose_parse_agrees() {
    let mut compared = 0;
    let mut skipped = Vec::new();
    for path in cases("ok") {
        let input = std::fs::read(&path).expect("case");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = std::str::from_utf8(&input) else {
            skipped.push(format!("{name}: not utf-8"));
            continue;
        };
        let parsed = std::panic::catch_unwind(|| {
            edi::loose_parse(text).map(|d| {
                d.interchanges
                    .iter()
                    .flat_map(|i| i.functional_groups.iter())
                    .flat_map(|g| g.transactions.iter())
                    .map(|t| {
                        t.segments
                            .iter()
                            .map(|s| {
                                let mut els: Vec<String> =
                                    s.elements.iter().map(|e| e.trim().to_string()).collect();
                                while els.last().is_some_and(|e| e.is_empty()) {
                                    els.pop();
                                }
                                (s.segment_abbreviation.trim().to_string(), els)
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
        });
        let theirs = match parsed {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                skipped.push(format!("{name}: edi rejects it ({e})"));
                continue;
            }
            Err(_) => {
                skipped.push(format!("{name}: edi panics"));
                continue;
            }
        };
        let doc = read(&input, &ReadOptions::default());
        let ours: Vec<Vec<(String, Vec<String>)>> = doc
            .transactions()
            .map(|t| {
                t.body()
                    .iter()
                    .map(|s| {
                        (
                            s.id().to_string(),
                            s.elements().iter().map(|e| e.trim().to_string()).collect(),
                        )
                    })
                    .collect()
            })
            .collect();
        // by design: edi keeps CR/LF inside element data, does not unwrap wrapped lines, and
        // applies the first ISA's delimiters to the whole file
        const DIVERGES: &[(&str, &str)] = &[
            (
                "0017_wrapped_80_columns.edi",
                "edi keeps line breaks inside data (we strip them)",
            ),
            (
                "0018_linebreak_in_data.edi",
                "edi keeps line breaks inside data (we make them a space)",
            ),
            (
                "0052_linebreak_inside_note.edi",
                "edi keeps line breaks inside data (we make them a space)",
            ),
            (
                "0043_three_interchanges_newline_star.edi",
                "edi uses the first isa's delimiters for every interchange",
            ),
        ];
        if let Some((_, why)) = DIVERGES.iter().find(|(n, _)| *n == name) {
            assert_ne!(
                ours, theirs,
                "{name}: expected divergence vanished, drop it from the list"
            );
            skipped.push(format!("{name}: {why}"));
            continue;
        }
        assert_eq!(
            ours, theirs,
            "{name}: reader disagrees with edi::loose_parse"
        );
        compared += 1;
    }
    eprintln!(
        "oracle: compared {compared}, skipped {}:\n{}",
        skipped.len(),
        skipped.join("\n")
    );
    assert!(compared >= 20, "only {compared} files compared");
}

// ---------------------------------------------------------------- proptest

mod prop {
    use super::super::*;
    use super::{sample_gs, sample_isa};
    use proptest::prelude::*;

    const TEXT: &str = "[a-zA-Z0-9][a-zA-Z0-9 *~>^|\\r\\n\\t\\x01éßøæ“”–…€漢-]{0,40}";

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex(TEXT).expect("regex")
    }
    /// An identifier the writer carries exactly (PO number, line number, product id).
    fn ident() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9 ./#-]{0,18}[a-zA-Z0-9])?"
    }
    fn otext() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }
    fn code() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{2,3}"
    }
    fn ocode() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(code())
    }
    fn num() -> impl Strategy<Value = String> {
        "[0-9]{1,6}(\\.[0-9]{1,2})?"
    }
    fn rf() -> impl Strategy<Value = Ref> {
        (code(), text(), otext()).prop_map(|(qualifier, value, description)| Ref {
            qualifier,
            value,
            description,
        })
    }
    fn dtm() -> impl Strategy<Value = Dtm> {
        ("[0-9]{3}", "[0-9]{8}", proptest::option::of("[0-9]{4}")).prop_map(
            |(qualifier, date, time)| Dtm {
                qualifier,
                date,
                time,
            },
        )
    }
    fn contact() -> impl Strategy<Value = Contact> {
        (
            code(),
            otext(),
            proptest::collection::vec((code(), text()), 0..3),
        )
            .prop_map(|(function, name, comms)| Contact {
                function,
                name,
                comms,
            })
    }
    fn party() -> impl Strategy<Value = Party> {
        (
            (code(), otext(), ocode(), otext()),
            proptest::collection::vec(text(), 0..3),
            proptest::collection::vec(text(), 0..4),
            (
                otext(),
                proptest::option::of("[A-Z]{2}"),
                otext(),
                proptest::option::of("[A-Z]{2,3}"),
            ),
            proptest::collection::vec(contact(), 0..2),
        )
            .prop_map(
                |(
                    (entity, name, id_qualifier, id),
                    extra_names,
                    address,
                    (city, state, postal_code, country),
                    contacts,
                )| Party {
                    entity,
                    name,
                    id_qualifier,
                    id,
                    extra_names,
                    address,
                    city,
                    state,
                    postal_code,
                    country,
                    contacts,
                },
            )
    }
    fn line() -> impl Strategy<Value = Line> {
        (
            (
                "[0-9]{1,6}",
                num(),
                // PO103 is a code of exactly 2 (a longer one is refused, never cut).
                "[a-zA-Z0-9]{2}",
                proptest::option::of(num()),
                ocode(),
            ),
            proptest::collection::vec(
                (code(), ident()).prop_map(|(qualifier, value)| ProductId { qualifier, value }),
                0..4,
            ),
            otext(),
            proptest::collection::vec(rf(), 0..2),
            proptest::collection::vec(dtm(), 0..2),
            proptest::collection::vec(text(), 0..2),
        )
            .prop_map(
                |(
                    (number, quantity, uom, unit_price, price_basis),
                    product_ids,
                    description,
                    refs,
                    dates,
                    messages,
                )| Line {
                    number,
                    quantity,
                    uom,
                    unit_price,
                    price_basis,
                    product_ids,
                    description,
                    description_continued: Vec::new(),
                    refs,
                    dates,
                    messages,
                    extra: Vec::new(),
                },
            )
    }
    fn po() -> impl Strategy<Value = Po850> {
        (
            (
                code(),
                code(),
                ident(),
                otext(),
                "[0-9]{8}",
                otext(),
                proptest::option::of((code(), "[A-Z]{3}")),
            ),
            (
                proptest::collection::vec(rf(), 0..3),
                proptest::collection::vec(contact(), 0..2),
            ),
            (
                proptest::option::of((code(), ocode(), otext()).prop_map(
                    |(payment_method, location_qualifier, description)| Fob {
                        payment_method,
                        location_qualifier,
                        description,
                    },
                )),
                proptest::option::of(
                    (code(), ocode(), proptest::option::of("[0-9]{1,3}"), otext()).prop_map(
                        |(type_code, basis_date_code, net_days, description)| Terms {
                            type_code,
                            basis_date_code,
                            net_days,
                            description,
                        },
                    ),
                ),
                proptest::collection::vec(dtm(), 0..2),
                proptest::option::of((ocode(), ocode(), otext(), ocode(), otext()).prop_map(
                    |(routing_sequence, id_qualifier, scac, method, routing)| Td5 {
                        routing_sequence,
                        id_qualifier,
                        scac,
                        method,
                        routing,
                    },
                )),
            ),
            proptest::collection::vec(
                (code(), otext(), proptest::collection::vec(text(), 0..3)).prop_map(
                    |(qualifier, reference, messages)| Note {
                        qualifier,
                        reference,
                        messages,
                    },
                ),
                0..2,
            ),
            proptest::collection::vec(party(), 0..3),
            proptest::collection::vec(line(), 1..4),
            (any::<bool>(), proptest::option::of("[0-9]{1,8}\\.[0-9]{2}")),
        )
            .prop_map(
                |(
                    (purpose, po_type, po_number, release, date, contract, currency),
                    (refs, contacts),
                    (fob, terms, dates, carrier),
                    notes,
                    parties,
                    lines,
                    (hash_total, total_amount),
                )| Po850 {
                    purpose,
                    po_type,
                    po_number,
                    release,
                    date,
                    contract,
                    currency,
                    refs,
                    contacts,
                    fob,
                    terms,
                    dates,
                    carrier,
                    notes,
                    parties,
                    lines,
                    hash_total,
                    total_amount,
                    ..Default::default()
                },
            )
    }

    /// What the writer should turn `po` into (sanitised, uppercased, truncated).
    fn expected(po: &Po850, o: &WriteOptions) -> Po850 {
        let rep = if o.version == Version::V5010 {
            Some(o.delimiters.repetition.unwrap_or(b'^'))
        } else {
            None
        };
        let s = |v: &str, seg: &str, el: usize| {
            sanitize(
                v,
                &o.delimiters,
                rep,
                o.uppercase,
                super::writer_max(seg, el, o),
            )
        };
        let os = |v: &Option<String>, seg: &str, el: usize| v.as_deref().map(|v| s(v, seg, el));
        let r = |x: &Ref| Ref {
            qualifier: s(&x.qualifier, "REF", 1),
            value: s(&x.value, "REF", 2),
            description: os(&x.description, "REF", 3),
        };
        let d = |x: &Dtm| Dtm {
            qualifier: s(&x.qualifier, "DTM", 1),
            date: s(&x.date, "DTM", 2),
            time: os(&x.time, "DTM", 3),
        };
        let c = |x: &Contact| Contact {
            function: s(&x.function, "PER", 1),
            name: os(&x.name, "PER", 2),
            comms: x
                .comms
                .iter()
                .enumerate()
                .map(|(i, (a, b))| (s(a, "PER", 3 + 2 * i), s(b, "PER", 4 + 2 * i)))
                .collect(),
        };
        Po850 {
            purpose: s(&po.purpose, "BEG", 1),
            po_type: s(&po.po_type, "BEG", 2),
            // Identifiers are written exactly (not upper-cased).
            po_number: po.po_number.clone(),
            release: os(&po.release, "BEG", 4),
            date: s(&po.date, "BEG", 5),
            contract: os(&po.contract, "BEG", 6),
            currency: po
                .currency
                .as_ref()
                .map(|(a, b)| (s(a, "CUR", 1), s(b, "CUR", 2))),
            refs: po.refs.iter().map(r).collect(),
            contacts: po.contacts.iter().map(c).collect(),
            fob: po.fob.as_ref().map(|f| Fob {
                payment_method: s(&f.payment_method, "FOB", 1),
                location_qualifier: os(&f.location_qualifier, "FOB", 2),
                description: os(&f.description, "FOB", 3),
            }),
            terms: po.terms.as_ref().map(|t| Terms {
                type_code: s(&t.type_code, "ITD", 1),
                basis_date_code: os(&t.basis_date_code, "ITD", 2),
                net_days: os(&t.net_days, "ITD", 7),
                description: os(&t.description, "ITD", 12),
            }),
            dates: po.dates.iter().map(d).collect(),
            carrier: po
                .carrier
                .as_ref()
                .filter(|t| **t != Td5::default())
                .map(|t| Td5 {
                    routing_sequence: os(&t.routing_sequence, "TD5", 1),
                    id_qualifier: os(&t.id_qualifier, "TD5", 2),
                    scac: os(&t.scac, "TD5", 3),
                    method: os(&t.method, "TD5", 4),
                    routing: os(&t.routing, "TD5", 5),
                }),
            notes: po
                .notes
                .iter()
                .map(|n| Note {
                    qualifier: s(&n.qualifier, "N9", 1),
                    reference: os(&n.reference, "N9", 2),
                    messages: n.messages.iter().map(|m| s(m, "MSG", 1)).collect(),
                })
                .collect(),
            parties: po
                .parties
                .iter()
                .map(|p| Party {
                    entity: s(&p.entity, "N1", 1),
                    name: os(&p.name, "N1", 2),
                    id_qualifier: os(&p.id_qualifier, "N1", 3),
                    id: os(&p.id, "N1", 4),
                    extra_names: p
                        .extra_names
                        .iter()
                        .enumerate()
                        .map(|(i, v)| s(v, "N2", 1 + i % 2))
                        .collect(),
                    address: p
                        .address
                        .iter()
                        .enumerate()
                        .map(|(i, v)| s(v, "N3", 1 + i % 2))
                        .collect(),
                    city: os(&p.city, "N4", 1),
                    state: os(&p.state, "N4", 2),
                    postal_code: os(&p.postal_code, "N4", 3),
                    country: os(&p.country, "N4", 4),
                    contacts: p.contacts.iter().map(c).collect(),
                })
                .collect(),
            lines: po
                .lines
                .iter()
                .map(|l| Line {
                    number: l.number.clone(),
                    quantity: s(&l.quantity, "PO1", 2),
                    uom: s(&l.uom, "PO1", 3),
                    unit_price: os(&l.unit_price, "PO1", 4),
                    price_basis: os(&l.price_basis, "PO1", 5),
                    product_ids: l
                        .product_ids
                        .iter()
                        .enumerate()
                        .map(|(i, p)| ProductId {
                            qualifier: s(&p.qualifier, "PO1", 6 + 2 * i),
                            value: p.value.clone(),
                        })
                        .collect(),
                    description: os(&l.description, "PID", 5),
                    description_continued: Vec::new(),
                    refs: l.refs.iter().map(r).collect(),
                    dates: l.dates.iter().map(d).collect(),
                    messages: l.messages.iter().map(|m| s(m, "MSG", 1)).collect(),
                    extra: Vec::new(),
                })
                .collect(),
            hash_total: po.hash_total,
            total_amount: os(&po.total_amount, "AMT", 2),
            ..Default::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn po_round_trip(po in po(), newline in any::<bool>(), v5010 in any::<bool>()) {
            let opts = WriteOptions {
                newline,
                version: if v5010 { Version::V5010 } else { Version::V4010 },
                ..WriteOptions::default()
            };
            let out = write(&sample_isa(), &[OutGroup { header: sample_gs(), transactions: vec![po.to_transaction("0001")] }], &opts)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let doc = read(&out, &ReadOptions::default());
            let errs: Vec<String> = doc.errors().map(|d| d.to_string()).collect();
            prop_assert!(errs.is_empty(), "{:?}", errs);
            prop_assert!(doc.is_complete());
            let tx = doc.transactions().next().ok_or_else(|| TestCaseError::fail("no tx"))?;
            let (back, d) = Po850::parse(tx);
            prop_assert!(d.is_empty(), "{:?}", d);
            prop_assert_eq!(back, expected(&po, &opts));
            let text = std::str::from_utf8(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(edi::parse(text).is_ok(), "edi::parse rejects our 850: {:?}", edi::parse(text).err());
        }
    }
}

// ---------------------------------------------------------------- no panic

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn exercise(input: &[u8]) -> usize {
    let doc = read(input, &ReadOptions::default());
    let mut n = doc
        .diagnostics
        .iter()
        .map(|d| d.to_string().len())
        .sum::<usize>();
    for ic in &doc.interchanges {
        for g in &ic.groups {
            let a = Ack997::for_group(g, &doc.diagnostics, Version::V5010);
            n += a.sets.len();
            for t in &g.transactions {
                n += Po850::parse(t).1.len();
                n += Ack855::parse(t).1.len();
                let (asn, d) = Asn856::parse(t);
                n += d.len();
                for i in 0..asn.nodes.len() {
                    n += asn.ancestor(i, "S").unwrap_or(0);
                }
                n += Ack997::parse(t).1.len();
                for s in &t.segments {
                    n += s.element_count() + s.repetitions(2).len();
                    n += s.component(1, 2).map(|c| c.len()).unwrap_or(0);
                    n += s.position().byte_offset;
                }
            }
        }
    }
    n
}

/// The golden inputs, then `n` random byte strings and mutations of them (fixed seed).
fn random_and_mutated(n: usize) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = cases("ok")
        .into_iter()
        .chain(cases("err"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    seeds.push(Vec::new());
    let mut out = seeds.clone();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let specials = b"*~>^|\r\n ISA GS ST SE GE IEA HL 0\xe2\x80\xa6\x1d\xff";
    for i in 0..n {
        let base = seeds
            .get(rng.below(seeds.len()))
            .cloned()
            .unwrap_or_default();
        let mut v = base;
        match i % 5 {
            0 => {
                let len = rng.below(300);
                v = (0..len)
                    .map(|_| *specials.get(rng.below(specials.len())).unwrap_or(&b'A'))
                    .collect();
                if rng.below(2) == 0 {
                    let mut isa = b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *250101*1200*^*00501*000000001*0*P*>~".to_vec();
                    isa.extend(v);
                    v = isa;
                }
            }
            1 => v.truncate(rng.below(v.len() + 1)),
            _ => {
                for _ in 0..1 + rng.below(8) {
                    if v.is_empty() {
                        break;
                    }
                    let at = rng.below(v.len());
                    match rng.below(4) {
                        0 => {
                            if let Some(b) = v.get_mut(at) {
                                *b = *specials.get(rng.below(specials.len())).unwrap_or(&b'~');
                            }
                        }
                        1 => {
                            v.remove(at);
                        }
                        2 => v.insert(at, rng.next() as u8),
                        _ => {
                            let end = (at + rng.below(40)).min(v.len());
                            let chunk: Vec<u8> =
                                v.get(at..end).map(|c| c.to_vec()).unwrap_or_default();
                            let to = rng.below(v.len());
                            for (k, b) in chunk.into_iter().enumerate() {
                                v.insert((to + k).min(v.len()), b);
                            }
                        }
                    }
                }
            }
        }
        out.push(v);
    }
    out
}

#[test]
fn no_panic_random_and_mutated() {
    for v in random_and_mutated(20_000) {
        std::hint::black_box(exercise(&v));
    }
}

/// The reader's hot loop (`fast_run`) is an optimisation only: on every golden input and every
/// random or mutated one, the event stream (segments with their positions, diagnostics,
/// envelopes) is exactly the one the general path produces.
#[test]
fn fast_path_yields_what_the_general_path_yields() {
    let o = ReadOptions::default();
    let mut events_seen = 0usize;
    for v in random_and_mutated(5_000) {
        let events = |r: Reader<'_>| r.map(|e| format!("{e:?}")).collect::<Vec<_>>();
        let fast = events(Reader::new(&v, &o));
        let general = events(Reader::new(&v, &o).without_fast_path());
        assert_eq!(fast, general, "input {:?}", String::from_utf8_lossy(&v));
        events_seen += fast.len();
    }
    assert!(events_seen > 10_000, "the corpus exercises the reader");
}

#[test]
#[cfg(target_pointer_width = "64")]
fn segment_stays_48_bytes() {
    // Millions of these are written per big file: the bytes (16), the offset (8), the location
    // (20) and the separators (4).
    assert_eq!(std::mem::size_of::<Segment<'_>>(), 48);
}

#[test]
fn lowercase_and_odd_ids_dispatch_like_uppercase() {
    // Envelope IDs in any case still open and close sets; a NUL-padded "GS" keeps its old
    // (general-path) handling.
    let doc = read(
        b"st*850*1~beg*00*SA*1**20250101~se*3*1~",
        &ReadOptions::default(),
    );
    let t = doc.transactions().next().expect("one set");
    assert!(t.closed);
    assert_eq!(t.segments.len(), 3);
    assert!(doc
        .diagnostics
        .iter()
        .all(|d| d.code != DiagnosticCode::BadSegmentId
            && d.code != DiagnosticCode::UnknownSegmentId));
}

#[test]
fn a_quantity_that_is_not_a_number_is_an_error_and_a_997_names_it() {
    let text =
        include_str!("../../samples/ingram-po-855.edi").replace("PO1*1*10*EA", "PO1*1*TEN*EA");
    let doc = read(text.as_bytes(), &ReadOptions::default());
    let g = &doc.interchanges[0].groups[0];
    let tx = &g.transactions[0];
    let (ack, d) = Ack855::parse(tx);
    assert_eq!(ack.lines[0].quantity, None);
    let e = d.iter().find(|d| d.is_error()).expect("an error");
    assert_eq!(e.code, DiagnosticCode::NotNumeric);
    assert_eq!(e.position.segment_id.as_deref(), Some("PO1"));
    assert_eq!(e.position.element, Some(2));
    assert!(e.message.contains("po102 'TEN'"), "{e}");
    let set = SetAck::for_set(tx, &d);
    let out = Ack997::for_sets(&g.header, vec![set], &[], Version::V4010);
    let w = write(
        &doc.interchanges[0].header,
        &[OutGroup {
            header: g.header.clone(),
            transactions: vec![out.to_transaction("0001")],
        }],
        &WriteOptions::default(),
    )
    .unwrap();
    let w = String::from_utf8(w).unwrap();
    assert!(w.contains("AK3*PO1*3**8~"), "{w}");
    assert!(w.contains("AK4*2**6*TEN~"), "{w}");
    assert!(w.contains("AK5*R*5~"), "{w}");
    assert!(w.contains("AK9*R*1*1*0~"), "{w}");
}

#[test]
fn a_second_heading_in_one_set_is_an_error_and_never_read_over_the_first() {
    // Two 855s run together in one ST/SE: the second BAK must not rename the first's lines.
    let text = include_str!("../../samples/ingram-po-855.edi")
        .replace("ACK*IB*2*EA~", "ACK*IB*2*EA~BAK*00*AC*IM-PO-2002*20261120~");
    let doc = read(text.as_bytes(), &ReadOptions::default());
    let (ack, d) = Ack855::parse(doc.transactions().next().expect("tx"));
    assert_eq!(ack.po_number, "IM-PO-1001");
    let e = only_error_at(&d, "BAK");
    assert_eq!(e.position.segment_in_set, Some(6), "{:?}", e.position);
    assert!(e.message.contains("bak appears again"), "{}", e.message);

    // The same for an 856's BSN (after an HL, where it used to overwrite the shipment).
    let text = include_str!("../../samples/ingram-po-856.edi");
    let (first, second) = text.split_once("HL*2*").expect("an HL 2");
    let text = format!("{first}BSN*00*OTHER-SHIPMENT*20261122*1000~HL*2*{second}");
    let doc = read(text.as_bytes(), &ReadOptions::default());
    let (asn, d) = Asn856::parse(doc.transactions().next().expect("tx"));
    assert_ne!(asn.shipment_id, "OTHER-SHIPMENT");
    only_error_at(&d, "BSN");
}

/// The one error among `d`: an unexpected segment, at `segment`.
fn only_error_at<'a>(d: &'a [Diagnostic], segment: &str) -> &'a Diagnostic {
    let e: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
    assert_eq!(e.len(), 1, "{d:?}");
    assert_eq!(e[0].code, DiagnosticCode::UnexpectedSegment);
    assert_eq!(e[0].position.segment_id.as_deref(), Some(segment));
    e[0]
}
