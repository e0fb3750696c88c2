namespace Treechunk.Oci;

/// <summary>
/// The bytes of a blob that a destination can open again, from any offset: what it needs to
/// retry an upload or resume one where the registry says it stopped. It does not verify; the
/// destination does, while the bytes stream.
/// </summary>
public sealed class BlobContent
{
    private readonly Func<long, Stream> _open;

    /// <summary>The blob as a file on this machine, when it is one (a layout hardlinks it instead of copying).</summary>
    public string? LocalPath { get; }

    private BlobContent(Func<long, Stream> open, string? localPath)
    {
        _open = open;
        LocalPath = localPath;
    }

    /// <summary>The bytes from <paramref name="offset"/> to the end.</summary>
    public Stream Open(long offset = 0) => _open(offset);

    public static BlobContent FromFile(string path) => new(offset =>
    {
        var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        if (offset > 0) s.Seek(offset, SeekOrigin.Begin);
        return s;
    }, path);

    public static BlobContent FromBytes(byte[] data) => new(offset => new MemoryStream(data, (int)offset, data.Length - (int)offset, writable: false), null);

    /// <summary>A blob of an image source, opened there again whenever needed (ranges for offsets).</summary>
    public static BlobContent FromSource(IImageSource source, Descriptor d) =>
        new(offset => offset == 0 ? source.OpenBlob(d) : source.OpenBlobRange(d, offset, d.Size - offset), null);

    /// <summary>The same bytes, telling <paramref name="read"/> how many pass (for progress bars).</summary>
    public BlobContent Observed(Action<int> read) => new(offset => new ObservedStream(_open(offset), read), LocalPath);

    private sealed class ObservedStream(Stream inner, Action<int> read) : IO.ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            if (n > 0) read(n);
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
