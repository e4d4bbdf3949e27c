//! Throughput of the X12 codec: `read` and the streaming `Reader` on a generated ≥ 50 MB 856
//! interchange (deep S/O/P/I trees), compared with a bare memchr segment split and with
//! `edi::parse` (on a 5 MB interchange), plus 850 render throughput (POs with 20 lines).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edi_bridge::x12::{
    read, write, GsHeader, IsaHeader, Line, OutGroup, Po850, ProductId, ReadEvent, ReadOptions,
    Reader, WriteOptions,
};
use std::hint::black_box;

#[path = "common/gen_856.rs"]
mod gen_856;
use gen_856::gen_856;

fn bench_read(c: &mut Criterion) {
    let big = gen_856(50 * 1024 * 1024);
    let small = gen_856(5 * 1024 * 1024);
    let mut g = c.benchmark_group("read_856");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("x12::read 50MB", |b| {
        b.iter(|| {
            let doc = read(black_box(&big), &ReadOptions::default());
            black_box(doc.interchanges.len() + doc.diagnostics.len())
        })
    });
    g.bench_function("x12::Reader streaming 50MB", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for ev in Reader::new(black_box(&big), &ReadOptions::default()) {
                if let ReadEvent::Transaction(t) = ev {
                    n += t.segments.len();
                }
            }
            black_box(n)
        })
    });
    g.bench_function("memchr segment split 50MB", |b| {
        b.iter(|| {
            let data = black_box(&big);
            let mut n = 0usize;
            let mut last = 0usize;
            for i in memchr::memchr_iter(b'~', data) {
                let seg = &data[last..i];
                n += seg.len().min(1);
                last = i + 1;
            }
            black_box(n)
        })
    });
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("x12::read 5MB", |b| {
        b.iter(|| {
            black_box(
                read(black_box(&small), &ReadOptions::default())
                    .diagnostics
                    .len(),
            )
        })
    });
    let text = std::str::from_utf8(&small).expect("ascii");
    g.bench_function("edi::parse 5MB", |b| {
        b.iter(|| {
            black_box(
                edi::parse(black_box(text))
                    .map(|d| d.interchanges.len())
                    .ok(),
            )
        })
    });
    g.finish();
}

fn po(n: usize) -> Po850 {
    Po850 {
        purpose: "00".into(),
        po_type: "SA".into(),
        po_number: format!("45{n:08}"),
        date: "20250101".into(),
        currency: Some(("BY".into(), "USD".into())),
        hash_total: true,
        total_amount: Some("12345.67".into()),
        lines: (1..=20)
            .map(|i| Line {
                number: i.to_string(),
                quantity: "5".into(),
                uom: "EA".into(),
                unit_price: Some("123.45".into()),
                price_basis: Some("PE".into()),
                product_ids: vec![
                    ProductId {
                        qualifier: "VP".into(),
                        value: format!("ABC-{i}"),
                    },
                    ProductId {
                        qualifier: "BP".into(),
                        value: "1A2B3C".into(),
                    },
                ],
                description: Some("Widget 24 port switch – café".into()),
                ..Line::default()
            })
            .collect(),
        ..Po850::default()
    }
}

fn bench_render(c: &mut Criterion) {
    let isa = IsaHeader {
        sender_id: "INGRAMMICRO".into(),
        receiver_id: "VENDORERP".into(),
        date: "250101".into(),
        time: "1200".into(),
        control_number: "1".into(),
        ..IsaHeader::default()
    };
    let gs = GsHeader {
        functional_id: "PO".into(),
        app_sender: "INGRAMMICRO".into(),
        app_receiver: "VENDORERP".into(),
        control_number: "1".into(),
        ..GsHeader::default()
    };
    let orders: Vec<Po850> = (0..100).map(po).collect();
    let mut g = c.benchmark_group("render_850");
    g.throughput(Throughput::Elements(orders.len() as u64));
    g.bench_function("100 POs x 20 lines", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for (i, p) in orders.iter().enumerate() {
                let tx = p.to_transaction(&format!("{:04}", i + 1));
                let out = write(
                    &isa,
                    &[OutGroup {
                        header: gs.clone(),
                        transactions: vec![tx],
                    }],
                    &WriteOptions::default(),
                )
                .expect("write");
                bytes += out.len();
            }
            black_box(bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_read, bench_render);
criterion_main!(benches);
