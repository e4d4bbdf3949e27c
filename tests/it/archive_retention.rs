//! `[archive] keep_days` in a running daemon: old day directories of every archive tree go at
//! start (then hourly), recent ones and the newest two days of 850s stay, a symlink planted in
//! the archive is removed itself and never followed, and the round is announced as an event.

use std::path::Path;

use edi_bridge::events::Event;

use crate::support::Workspace;

/// `YYYY/MM/DD` of the day `days_ago` days before now (UTC, as the archive names days).
fn day(days_ago: u64) -> String {
    let now = edi_bridge::clock::Clock::system().now_ms();
    edi_bridge::clock::date_path(&edi_bridge::clock::rfc3339_ms(now - days_ago * 86_400_000))
}

fn plant(ws: &Workspace, tree: &str, days_ago: u64, name: &str) -> std::path::PathBuf {
    let dir = ws.path(&format!("archive/{tree}/{}", day(days_ago)));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), b"an archived file").unwrap();
    dir
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

#[tokio::test]
async fn keep_days_prunes_old_archive_days_through_the_file_layer() {
    let ws = Workspace::new();
    // 850s of three old days only (an idle month): the newest two of them are what the
    // continuity check reads, so only the oldest goes.
    let out_oldest = plant(&ws, "outbound", 40, "a.850");
    let out_kept = [
        plant(&ws, "outbound", 39, "b.850"),
        plant(&ws, "outbound", 38, "c.850"),
    ];
    let in_old = plant(&ws, "inbound", 30, "a.855");
    let in_new = plant(&ws, "inbound", 3, "b.855");
    let dup_old = plant(&ws, "duplicates", 30, "again.855");
    let dis_old = plant(&ws, "dismissed", 30, "junk.txt");
    // A symlink an intruder planted in an old day, pointing out of the archive.
    let outside = ws.path("outside.txt");
    std::fs::write(&outside, b"not the archive's").unwrap();
    std::os::unix::fs::symlink(&outside, in_old.join("escape")).unwrap();

    let d = ws.start_with("[archive]\nkeep_days = 7\n").await;
    let mut rx = d.r().events.subscribe();
    d.until("the old archive days to go", || {
        !exists(&in_old) && !exists(&out_oldest) && !exists(&dup_old) && !exists(&dis_old)
    })
    .await;
    for kept in out_kept.iter().chain([&in_new]) {
        assert!(exists(kept), "{} was kept", kept.display());
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"not the archive's");
    // The month directories left empty went too.
    assert!(!exists(in_old.parent().unwrap()) || in_old.parent() == in_new.parent());
    d.stop().await;
    // The round was announced (unless it finished before this test subscribed).
    while let Ok(ev) = rx.try_recv() {
        if let Event::ArchivePruned { days, problems, .. } = ev {
            assert_eq!((days, problems), (4, 0));
        }
    }

    // Restarted without keep_days: nothing more is removed, and the start-up continuity check
    // still finds its two newest days of 850s.
    let d = ws.start().await;
    d.stop().await;
    for kept in out_kept.iter().chain([&in_new]) {
        assert!(exists(kept), "{} was kept", kept.display());
    }
}

#[tokio::test]
async fn a_duplicate_is_archived_by_day_like_every_other_file() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let mut rx = d.r().events.subscribe();
    crate::support::drop_inbox(&ws, "a.855", &crate::support::ack_855_for("PO-DUP", 7));
    d.wait_inbox(&mut rx, "a.855").await;
    crate::support::drop_inbox(&ws, "b.855", &crate::support::ack_855_for("PO-DUP", 7));
    let edi_bridge::events::Outcome::Duplicate { moved, .. } = d.wait_inbox(&mut rx, "b.855").await
    else {
        panic!("not a duplicate")
    };
    assert_eq!(
        moved.parent().unwrap(),
        ws.path(&format!("archive/duplicates/{}", day(0)))
    );
    d.stop().await;
}
