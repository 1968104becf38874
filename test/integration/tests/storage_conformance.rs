//! One storage conformance suite, run unchanged against the embedded store and a real etcd.

use apiserver::storage::embedded::EmbeddedBackend;
use apiserver::storage::etcd3::EtcdBackend;
use apiserver::storage::interface::{Backend, EventKind, StoreError};
use bytes::Bytes;
use integration_tests::etcd::Etcd;
use std::sync::Arc;
use std::time::Duration;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn crud_and_cas(s: Arc<dyn Backend>) {
    let r1 = s.create("/registry/pods/ns/a", b("1")).await.unwrap();
    assert_eq!(
        s.create("/registry/pods/ns/a", b("x")).await,
        Err(StoreError::AlreadyExists)
    );
    let (kv, _) = s.get("/registry/pods/ns/a").await.unwrap();
    let kv = kv.unwrap();
    assert_eq!(
        (kv.value.as_ref(), kv.mod_revision, kv.create_revision),
        (b"1".as_ref(), r1, r1)
    );
    let r2 = s.update("/registry/pods/ns/a", b("2"), r1).await.unwrap();
    assert!(r2 > r1);
    // A stale compare-and-swap loses and reports what is stored now.
    match s.update("/registry/pods/ns/a", b("3"), r1).await {
        Err(StoreError::Conflict(Some(cur))) => assert_eq!(cur.mod_revision, r2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(
        s.update("/registry/pods/ns/missing", b("x"), 1).await,
        Err(StoreError::NotFound)
    );
    assert!(matches!(
        s.delete("/registry/pods/ns/a", r1).await,
        Err(StoreError::Conflict(_))
    ));
    let (r3, prev) = s.delete("/registry/pods/ns/a", r2).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(prev.value, b("2"));
    assert_eq!(s.get("/registry/pods/ns/a").await.unwrap().0, None);
    assert_eq!(
        s.delete("/registry/pods/ns/a", 0).await,
        Err(StoreError::NotFound)
    );
}

async fn range_paging_and_history(s: Arc<dyn Backend>) {
    let mut last = 0;
    for i in 0..25 {
        last = s
            .create(&format!("/registry/cm/ns/k{i:02}"), b(&i.to_string()))
            .await
            .unwrap();
    }
    s.create("/registry/cmx/other", b("not in prefix"))
        .await
        .unwrap();
    assert_eq!(s.count("/registry/cm/").await.unwrap(), 25);
    let mut seen = Vec::new();
    let mut start = String::new();
    loop {
        let page = s.range("/registry/cm/", &start, 10, last).await.unwrap();
        assert_eq!(page.revision, last);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        start = format!("{}\0", page.kvs.last().unwrap().key);
        // Writes after the first page do not show up in later pages read at `last`.
        s.create(&format!("/registry/cm/ns/new{}", seen.len()), b("late"))
            .await
            .unwrap();
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 25);
    // A read at an older revision sees the older value.
    let k = "/registry/cm/ns/k00";
    let (kv, _) = s.get(k).await.unwrap();
    let old_rev = kv.unwrap().mod_revision;
    let new_rev = s.update(k, b("changed"), old_rev).await.unwrap();
    let at_old = s.range(k, "", 0, old_rev).await.unwrap();
    assert_eq!(at_old.kvs[0].value, b("0"));
    let at_new = s.range(k, "", 0, 0).await.unwrap();
    assert_eq!(at_new.kvs[0].value, b("changed"));
    // After compaction history before the compacted revision is gone.
    s.compact(new_rev).await.unwrap();
    assert!(matches!(
        s.range(k, "", 0, old_rev).await,
        Err(StoreError::Compacted { .. })
    ));
    assert_watch_compacted(&s, "/registry/cm/", old_rev).await;
    assert_eq!(
        s.range(k, "", 0, new_rev).await.unwrap().kvs[0].value,
        b("changed")
    );
    assert!(matches!(
        s.range(k, "", 0, new_rev + 1000).await,
        Err(StoreError::FutureRevision(_))
    ));
}

/// A watch from a compacted revision fails, either at once or as its first stream item.
async fn assert_watch_compacted(s: &Arc<dyn Backend>, prefix: &str, rev: i64) {
    match s.watch(prefix, rev).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(mut rx) => {
            let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(
                matches!(first, Err(StoreError::Compacted { .. })),
                "expected Compacted, got {first:?}"
            );
        }
    }
}

async fn watch_from_revision(s: Arc<dyn Backend>) {
    let r1 = s.create("/registry/w/a", b("1")).await.unwrap();
    let r2 = s.update("/registry/w/a", b("2"), r1).await.unwrap();
    s.create("/registry/other/x", b("x")).await.unwrap();
    let r3 = s.create("/registry/w/b", b("1")).await.unwrap();
    // Resuming from r2 delivers exactly what happened after r1 under the prefix.
    let mut rx = s.watch("/registry/w/", r2).await.unwrap();
    let (r4, _) = s.delete("/registry/w/a", r2).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.extend(batch.events);
    }
    let summary: Vec<(EventKind, &str, i64)> = got
        .iter()
        .map(|e| (e.kind, e.kv.key.as_str(), e.kv.mod_revision))
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::Put, "/registry/w/a", r2),
            (EventKind::Put, "/registry/w/b", r3),
            (EventKind::Delete, "/registry/w/a", r4)
        ]
    );
    assert_eq!(got[0].prev.as_ref().unwrap().value, b("1"));
    assert_eq!(got[2].prev.as_ref().unwrap().value, b("2"));
    // Writes elsewhere still advance the watcher's revision (progress notifications).
    let elsewhere = s.create("/registry/other/y", b("y")).await.unwrap();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let batch = rx.recv().await.unwrap().unwrap();
            assert!(
                batch.events.is_empty(),
                "no events expected outside the prefix"
            );
            if batch.revision >= elsewhere {
                return batch.revision;
            }
        }
    })
    .await
    .unwrap();
    assert!(reached >= elsewhere);
}

async fn concurrent_writers_lose_nothing(s: Arc<dyn Backend>) {
    let key = "/registry/counter/c";
    s.create(key, b("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let (kv, _) = s.get(key).await.unwrap();
                let kv = kv.unwrap();
                let n: i64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                match s
                    .update(key, b(&(n + 1).to_string()), kv.mod_revision)
                    .await
                {
                    Ok(_) => return,
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (kv, _) = s.get(key).await.unwrap();
    assert_eq!(kv.unwrap().value, b("50"));
}

async fn suite(s: Arc<dyn Backend>) {
    crud_and_cas(s.clone()).await;
    range_paging_and_history(s.clone()).await;
    watch_from_revision(s.clone()).await;
    concurrent_writers_lose_nothing(s).await;
}

#[tokio::test]
async fn embedded_backend_conformance() {
    let dir = tempfile::tempdir().unwrap();
    suite(Arc::new(EmbeddedBackend::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn etcd_backend_conformance() {
    let etcd = Etcd::start();
    let backend = EtcdBackend::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .unwrap();
    suite(Arc::new(backend)).await;
}

#[tokio::test]
async fn embedded_backend_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rev = {
        let s = EmbeddedBackend::open(dir.path()).unwrap();
        s.create("/registry/a", b("1")).await.unwrap();
        let r = s.create("/registry/b", b("2")).await.unwrap();
        s.delete("/registry/a", 0).await.unwrap();
        r + 1
    };
    let s = EmbeddedBackend::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(s.get("/registry/a").await.unwrap().0, None);
    assert_eq!(s.get("/registry/b").await.unwrap().0.unwrap().value, b("2"));
    // Revisions keep increasing after a restart.
    assert!(s.create("/registry/c", b("3")).await.unwrap() > rev);
}
