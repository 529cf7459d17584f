//! One conformance suite for every storage backend: what the registry relies on, run
//! against the filesystem and against S3 (a local moto_server).

use bytes::Bytes;
use futures_util::StreamExt;
use kiln_registry::config::S3Config;
use kiln_registry::storage::{ByteStream, FsStorage, S3Storage, Storage};
use kiln_registry::Error;

fn stream(chunks: Vec<&'static [u8]>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
    ))
}

async fn read(s: &dyn Storage, path: &str, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = s.reader(path, offset, len).await.unwrap();
    while let Some(chunk) = r.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn conformance(s: &dyn Storage) {
    // Nothing there.
    assert!(matches!(s.get("a/missing").await, Err(Error::NotFound(_))));
    assert!(s.stat("a/missing").await.unwrap().is_none());
    assert!(s.list("nowhere").await.unwrap().is_empty());
    s.delete("nowhere/at/all").await.unwrap();

    // Whole objects.
    s.put("a/b/one", Bytes::from_static(b"first"))
        .await
        .unwrap();
    s.put("a/b/one", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert_eq!(s.get("a/b/one").await.unwrap().as_ref(), b"0123456789");
    assert_eq!(s.stat("a/b/one").await.unwrap().unwrap().size, 10);
    assert_eq!(read(s, "a/b/one", 3, Some(4)).await, b"3456");
    assert_eq!(read(s, "a/b/one", 7, None).await, b"789");
    s.put("a/b/two", Bytes::from_static(b"2")).await.unwrap();
    s.put("a/c/three", Bytes::from_static(b"3")).await.unwrap();
    assert_eq!(s.list("a").await.unwrap(), ["b", "c"]);
    assert_eq!(s.list("a/b").await.unwrap(), ["one", "two"]);

    // Appending: in order only; a broken stream keeps what arrived.
    assert_eq!(
        s.append("up/data", 0, stream(vec![b"hello ", b"wor"]))
            .await
            .unwrap(),
        9
    );
    assert!(matches!(
        s.append("up/data", 3, stream(vec![b"x"])).await,
        Err(Error::Offset { actual: 9, .. })
    ));
    let broken: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"ld")),
        Err(std::io::Error::other("the client went away")),
    ]));
    assert!(matches!(
        s.append("up/data", 9, broken).await,
        Err(Error::Body(_))
    ));
    assert_eq!(s.stat("up/data").await.unwrap().unwrap().size, 11);
    assert_eq!(
        s.append("up/data", 11, stream(vec![b"!"])).await.unwrap(),
        12
    );
    assert_eq!(read(s, "up/data", 0, None).await, b"hello world!");
    assert_eq!(s.list("up").await.unwrap(), ["data"]);

    // Renaming an appended object makes it one whole object.
    s.rename("up/data", "blobs/x").await.unwrap();
    assert_eq!(s.get("blobs/x").await.unwrap().as_ref(), b"hello world!");
    assert!(s.stat("up/data").await.unwrap().is_none());
    s.rename("a/b/two", "a/b/renamed").await.unwrap();
    assert_eq!(s.list("a/b").await.unwrap(), ["one", "renamed"]);
    assert!(matches!(
        s.rename("a/b/two", "a/b/x").await,
        Err(Error::NotFound(_))
    ));

    // Deleting a prefix removes everything under it.
    s.delete("a").await.unwrap();
    assert!(s.list("a").await.unwrap().is_empty());
    assert!(s.stat("a/c/three").await.unwrap().is_none());
    assert_eq!(s.get("blobs/x").await.unwrap().as_ref(), b"hello world!");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_filesystem_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&FsStorage::open(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_backend_conforms() {
    let Some(moto) = tokio::task::spawn_blocking(kiln_testkit::Moto::start)
        .await
        .unwrap()
    else {
        return;
    };
    let bucket = {
        let moto = &moto;
        tokio::task::block_in_place(|| moto.bucket("conformance"))
    };
    let config = S3Config {
        bucket: bucket.name,
        endpoint: Some(bucket.endpoint),
        region: Some(bucket.region.into()),
        prefix: Some(bucket.prefix.into()),
        access_key_id: Some(bucket.access_key_id.into()),
        secret_access_key: Some(bucket.secret_access_key.into()),
    };
    conformance(&S3Storage::open(&config).unwrap()).await;
}
