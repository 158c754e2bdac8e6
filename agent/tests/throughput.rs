//! Write throughput over one gRPC session, in batches of 1000 entries.
//! Ignored by default (timing on a shared machine is noise); run with
//! `cargo test --release -p solyx-agent --test throughput -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;

const ENTRIES: u64 = 100_000;
const BATCH: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures throughput; run on demand in release mode"]
async fn writes_100k_table_entries_in_batches_of_1000() {
    let (mut h, _s) = primary_with_pipeline().await;
    // A pipeline whose l2 table holds them all.
    let mut info = p4info();
    info.tables[0].size = ENTRIES as i64;
    push_pipeline(
        &mut h.client,
        10,
        info,
        solyx_p4runtime::proto::p4::v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        None,
    )
    .await
    .unwrap();
    let ix = index();
    let batches: Vec<Vec<_>> = (0..ENTRIES / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|i| insert(table_entity(l2_entry(&ix, b * BATCH + i + 1, 1))))
                .collect()
        })
        .collect();
    let start = Instant::now();
    for batch in batches {
        write(&mut h.client, batch).await.unwrap();
    }
    let elapsed = start.elapsed();
    let rate = ENTRIES as f64 / elapsed.as_secs_f64();
    println!("{ENTRIES} entries in {elapsed:?}: {rate:.0} entries/s");
    assert_eq!(h.service.table_entry_count(), ENTRIES as usize);
    let start = Instant::now();
    let read_back = read(&mut h.client, vec![wildcard(T_L2)]).await.unwrap();
    println!(
        "read {} entries back in {:?}",
        read_back.len(),
        start.elapsed()
    );
    assert_eq!(read_back.len(), ENTRIES as usize);
}
