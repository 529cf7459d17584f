//! Streaming compression and decompression. gzip is compressed in parallel: the stream
//! is cut into fixed 1 MiB chunks, each a gzip member of its own (RFC 1952 allows any
//! number; every gunzip, Go's included, reads them as one stream), so the output is the
//! same whatever the number of threads. zstd uses the library's own worker threads.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::thread;

use super::Compression;

const GZIP_CHUNK: usize = 1 << 20;
const ZSTD_LEVEL: i32 = 3;

fn workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// A writer that compresses into `W`; call [`Compressor::finish`] to flush the end.
pub struct Compressor<W: Write + Send + 'static> {
    inner: Inner<W>,
}

enum Inner<W: Write + Send + 'static> {
    Plain(W),
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write + Send + 'static> Compressor<W> {
    /// Compresses what is written into `out` as `compression` says (passes it through for
    /// `None`).
    pub fn new(compression: Compression, out: W) -> io::Result<Self> {
        let inner = match compression {
            Compression::None => Inner::Plain(out),
            Compression::Gzip => Inner::Gzip(ParallelGzip::new(out)),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                enc.include_checksum(true)?;
                let n = workers();
                if n > 1 {
                    enc.multithread(n as u32)?;
                }
                Inner::Zstd(enc)
            }
        };
        Ok(Compressor { inner })
    }

    /// Ends the stream (the compressor's trailer) and gives `out` back.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::Plain(w) => Ok(w),
            Inner::Gzip(g) => g.finish(),
            Inner::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(w) => w.write(buf),
            Inner::Gzip(g) => g.write(buf),
            Inner::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Gzip(_) => Ok(()),
            Inner::Zstd(z) => z.flush(),
        }
    }
}

/// gzip members compressed by a pool of threads, written in order.
struct ParallelGzip<W: Write> {
    out: W,
    chunk: Vec<u8>,
    next_seq: u64,
    next_to_write: u64,
    in_flight: usize,
    jobs: Option<mpsc::SyncSender<(u64, Vec<u8>)>>,
    results: mpsc::Receiver<(u64, Vec<u8>)>,
    pending: BTreeMap<u64, Vec<u8>>,
    threads: Vec<thread::JoinHandle<()>>,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    fn new(out: W) -> Self {
        let n = workers();
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(n);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (res_tx, res_rx) = mpsc::channel();
        let threads = (0..n)
            .map(|_| {
                let rx = job_rx.clone();
                let tx = res_tx.clone();
                thread::spawn(move || {
                    // libdeflate: a whole member at once, at zlib's default level, two to
                    // three times as fast as zlib's streaming deflate.
                    let mut deflate =
                        libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
                    loop {
                        let job = rx.lock().map(|r| r.recv());
                        let Ok(Ok((seq, data))) = job else { return };
                        let mut compressed = vec![0u8; deflate.gzip_compress_bound(data.len())];
                        let n = deflate
                            .gzip_compress(&data, &mut compressed)
                            .expect("the bound is enough");
                        compressed.truncate(n);
                        if tx.send((seq, compressed)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        ParallelGzip {
            out,
            chunk: Vec::with_capacity(GZIP_CHUNK),
            next_seq: 0,
            next_to_write: 0,
            in_flight: 0,
            jobs: Some(job_tx),
            results: res_rx,
            pending: BTreeMap::new(),
            threads,
            max_in_flight: 2 * n,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(GZIP_CHUNK));
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        self.jobs
            .as_ref()
            .expect("open")
            .send((self.next_seq, data))
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.next_seq += 1;
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for one result and writes whatever is now in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, data) = self
            .results
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.in_flight -= 1;
        self.pending.insert(seq, data);
        while let Some(data) = self.pending.remove(&self.next_to_write) {
            self.out.write_all(&data)?;
            self.next_to_write += 1;
        }
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(GZIP_CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..take]);
        if self.chunk.len() == GZIP_CHUNK {
            self.submit()?;
        }
        Ok(take)
    }

    fn finish(mut self) -> io::Result<W> {
        // An empty stream is still one (empty) gzip member, as gzip writes it.
        if !self.chunk.is_empty() || self.next_seq == 0 {
            self.submit()?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A reader that decompresses whatever it finds: gzip (any number of members), zstd,
/// bzip2, xz, or plain bytes. Layers are only ever gzip or zstd; bzip2 and xz come in
/// archives (`ADD`, `kiln import`, a build context on standard input).
pub struct Decompressor<R: Read> {
    inner: DecompressorInner<R>,
}

enum DecompressorInner<R: Read> {
    Plain(BufReader<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<R>>>),
    Bzip2(Box<bzip2::bufread::MultiBzDecoder<BufReader<R>>>),
    Xz(Box<liblzma::bufread::XzDecoder<BufReader<R>>>),
}

impl<R: Read> Decompressor<R> {
    /// Reads `reader` decompressed, whatever its compression: gzip, zstd, bzip2 or xz by
    /// their magic bytes, else as it is.
    pub fn new(reader: R) -> io::Result<Self> {
        let mut buffered = BufReader::with_capacity(1 << 20, reader);
        let head = buffered.fill_buf()?;
        let inner = if head.starts_with(b"BZh") {
            DecompressorInner::Bzip2(Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)))
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            DecompressorInner::Xz(Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(
                buffered,
            )))
        } else {
            match Compression::sniff(head) {
                Compression::None => DecompressorInner::Plain(buffered),
                Compression::Gzip => DecompressorInner::Gzip(Box::new(
                    flate2::bufread::MultiGzDecoder::new(buffered),
                )),
                Compression::Zstd => DecompressorInner::Zstd(Box::new(
                    zstd::stream::read::Decoder::with_buffer(buffered)?,
                )),
            }
        };
        Ok(Decompressor { inner })
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            DecompressorInner::Plain(r) => r.read(buf),
            DecompressorInner::Gzip(r) => r.read(buf),
            DecompressorInner::Zstd(r) => r.read(buf),
            DecompressorInner::Bzip2(r) => r.read(buf),
            DecompressorInner::Xz(r) => r.read(buf),
        }
    }
}
