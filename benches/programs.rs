//! Cost of the mapping's jq programs per document, beside the translation they follow: an 856's
//! canonical PO Status body built by `from_856` (the baseline), the identity program actually
//! run (the deliver worker skips it, this measures the floor of any program), a restructuring
//! program turning the body line-centric, and the same program also reading `$segments` and
//! `$po` (each named global is converted for the run, which costs about as much as the program).
//!
//! The second group is the price of the limits: the same program run in process (the baseline)
//! and in a program worker (`edi-bridge program-worker`, as the daemon runs every program: the
//! request and the answer cross two pipes as JSON, the run gets its own thread and limits).

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use edi_bridge::domain::canonical;
use edi_bridge::from_erp::inbox::segments_of;
use edi_bridge::ingram::from_856::from_856;
use edi_bridge::mapping::{Mapping, BODY_GLOBALS};
use edi_bridge::program::{Limits, Program, Runner, Sandbox};
use edi_bridge::x12;
use serde_json::Value;
use std::hint::black_box;

const ASN: &[u8] = include_bytes!("../samples/ingram-po-856.edi");
const WEBHOOK: &str = include_str!("../samples/ingram-po-webhook.json");

const LINE_CENTRIC: &str = r#"{
  ingramPurchaseOrderNumber,
  orderStatus,
  resellerOrderNumber: $po.resellerOrderNumber,
  bol: ([$segments[] | select(.[0] == "REF" and .[1] == "BM") | .[2]] | first),
  lines: [
    .shipments[] as $s | $s.packages[] as $p | $p.lines[]
    | {
        ingramLineNumber,
        shippedQuantity: .quantityShipped,
        shipmentDetails: [{
          shipDate: $s.shipDate,
          carrierDetails: [{
            carrierName: $s.carrierName,
            trackingDetails: [{trackingNumber: $p.trackingNumber}]
          }]
        }]
      }
  ]
}"#;

fn bench_programs(c: &mut Criterion) {
    let mapping = Mapping::builtin();
    let doc = x12::read(ASN, &x12::ReadOptions::default());
    let tx = &doc.interchanges[0].groups[0].transactions[0];
    let (asn, _) = x12::Asn856::parse(tx);
    let bsn = tx.segments[1].position();
    let event: Value = serde_json::from_str(WEBHOOK).unwrap();
    let po = edi_bridge::ingram::order::decode(&event, &mapping.webhook)
        .unwrap()
        .orders
        .remove(0);
    let views: BTreeMap<_, _> = BTreeMap::new();
    let body = from_856(&asn, &bsn, &mapping, &views).unwrap()[0]
        .call
        .body
        .clone();
    let segments = serde_json::to_value(segments_of(tx)).unwrap();
    let po_json = canonical::po_json(&po);
    let globals = [segments, po_json];
    let identity = Program::compile(". | .", &BODY_GLOBALS).unwrap();
    let restructure = Program::compile(LINE_CENTRIC, &BODY_GLOBALS).unwrap();
    assert!(restructure.run_object(&body, &globals).unwrap()["lines"].is_array());

    let mut g = c.benchmark_group("programs_per_856");
    g.bench_function("baseline: from_856 canonical body", |b| {
        b.iter(|| black_box(from_856(black_box(&asn), &bsn, &mapping, &views).unwrap()))
    });
    g.bench_function("identity program (run, not skipped)", |b| {
        b.iter(|| black_box(identity.run_object(black_box(&body), &globals).unwrap()))
    });
    let plain = Program::compile(
        &LINE_CENTRIC
            .lines()
            .filter(|l| !l.contains("$po") && !l.contains("$segments"))
            .collect::<Vec<_>>()
            .join("\n"),
        &BODY_GLOBALS,
    )
    .unwrap();
    assert!(!plain.uses("$segments") && !plain.uses("$po"));
    g.bench_function("line-centric program", |b| {
        b.iter(|| black_box(plain.run_object(black_box(&body), &globals).unwrap()))
    });
    g.bench_function("line-centric program with $segments and $po", |b| {
        b.iter(|| black_box(restructure.run_object(black_box(&body), &globals).unwrap()))
    });
    g.finish();

    let in_process = Runner::in_process(Limits::default());
    let worker = Runner::sandboxed(
        Sandbox::new(env!("CARGO_BIN_EXE_edi-bridge")),
        Limits::default(),
    );
    // The first run starts the worker and compiles the program there (both kept).
    assert_eq!(
        worker.run_object(&restructure, &body, &globals).unwrap(),
        in_process
            .run_object(&restructure, &body, &globals)
            .unwrap()
    );
    let mut g = c.benchmark_group("program_per_call_in_a_worker");
    g.bench_function("baseline: line-centric program in process", |b| {
        b.iter(|| {
            black_box(
                in_process
                    .run_object(&plain, black_box(&body), &globals)
                    .unwrap(),
            )
        })
    });
    g.bench_function("line-centric program in a worker", |b| {
        b.iter(|| {
            black_box(
                worker
                    .run_object(&plain, black_box(&body), &globals)
                    .unwrap(),
            )
        })
    });
    g.bench_function("identity program in a worker", |b| {
        b.iter(|| {
            black_box(
                worker
                    .run_object(&identity, black_box(&body), &globals)
                    .unwrap(),
            )
        })
    });
    g.bench_function("with $segments and $po in a worker", |b| {
        b.iter(|| {
            black_box(
                worker
                    .run_object(&restructure, black_box(&body), &globals)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_programs);
criterion_main!(benches);
