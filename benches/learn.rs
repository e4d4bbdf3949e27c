//! Cost of `edi-bridge mapping learn` on a VAN archive of 1,000 850s (the corpus generator's
//! "classic" layout) with the webhooks of the same POs: learning alone (which renders every
//! paired PO once, unpadded, to find `[[po850.pad]]`), and learning plus the self-check that
//! renders and compares every paired PO. The baseline is reading the archive (parsing the 1,000
//! files), so the figures are ratios to the cheapest thing `learn` must do. Figures:
//! docs/benchmarks-learn.md.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use edi_bridge::mapping::Mapping;
use edi_bridge::migrate::{corpus, learn, X12File};
use std::hint::black_box;

const POS: u64 = 1_000;

fn bench(c: &mut Criterion) {
    let van = Mapping::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/van/classic/van.toml"),
    )
    .unwrap();
    let files: Vec<Vec<u8>> = (0..POS)
        .map(|n| corpus::van_850(&van, n).unwrap())
        .collect();
    let pos: Vec<_> = (0..POS)
        .map(|n| {
            edi_bridge::ingram::order::decode(&corpus::webhook(n), &Mapping::builtin().webhook)
                .unwrap()
                .orders
                .remove(0)
        })
        .collect();
    let parse = || -> Vec<(PathBuf, X12File)> {
        files
            .iter()
            .map(|b| (PathBuf::new(), X12File::parse(b).unwrap()))
            .collect()
    };
    let archive = parse();
    let mut g = c.benchmark_group("learn 1,000 850s");
    g.sample_size(10);
    g.bench_function("baseline: parse the archive", |b| {
        b.iter(|| black_box(parse()))
    });
    g.bench_function("learn", |b| {
        b.iter(|| black_box(learn::learn(&archive, &pos)))
    });
    g.bench_function("learn and verify every PO", |b| {
        b.iter(|| {
            let (_, failures) = learn::learn_and_verify(&archive, &pos);
            assert!(failures.is_empty());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
