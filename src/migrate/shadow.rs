//! Shadow mode: the daemon's 850s go to `[outbox] shadow_dir` instead of the ERP's outbox, and
//! each is compared with the VAN's 850 for the same PO (in `[migration] van_dir`) as soon as
//! both exist.
