namespace Treechunk.Posix;

/// <summary>
/// A stream over a file descriptor: open, read or write, close and nothing else. FileStream
/// adds fstat, flock, posix_fadvise and an unlock to every open, five extra syscalls per file,
/// which on a tree of small files is a visible share of a build; and it takes names as strings
/// that it would re-encode, while these take them through <see cref="FileNames"/>.
/// </summary>
public sealed class PosixFileStream : Stream
{
    // Holes are made in units of this size, the usual filesystem block.
    private const int HoleUnit = 4096;
    private int _fd;
    private readonly bool _write;
    private readonly bool _sparse;
    private long _position;
    private long _pendingHole;

    private PosixFileStream(int fd, bool write, bool sparse)
    {
        _fd = fd;
        _write = write;
        _sparse = sparse;
    }

    /// <summary>Opens a regular file for reading, refusing a symlink in its place (O_NOFOLLOW).</summary>
    public static PosixFileStream OpenRead(string path) =>
        new(LibC.Open(path, LibC.O_RDONLY | LibC.O_NOFOLLOW | LibC.O_CLOEXEC), write: false, sparse: false);

    /// <summary>
    /// Creates a new file (O_EXCL, so neither an existing file nor a symlink planted at the name is
    /// followed) for writing. With <paramref name="sparse"/>, aligned runs of zeros become holes
    /// instead of written blocks, as <c>cp --sparse=auto</c> makes them.
    /// </summary>
    public static PosixFileStream CreateNew(string path, int mode, bool sparse = false) =>
        new(LibC.Open(path, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, mode), write: true, sparse);

    /// <summary>The open descriptor (valid until dispose).</summary>
    public int Descriptor => _fd;

    /// <summary>The file's size now (statx on the descriptor); the stream itself does not seek.</summary>
    public long FileSize => LibC.FileSize(_fd);

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (_write) throw new NotSupportedException();
        if (buffer.IsEmpty) return 0;
        return LibC.Read(_fd, buffer);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (!_write) throw new NotSupportedException();
        if (!_sparse)
        {
            LibC.WriteAll(_fd, buffer);
            _position += buffer.Length;
            return;
        }
        // Pieces end on hole-unit boundaries of the file, so a hole is always whole blocks; runs
        // of pieces with data go out in one write.
        int runStart = 0, at = 0;
        while (at < buffer.Length)
        {
            int piece = (int)Math.Min(buffer.Length - at, HoleUnit - ((_position + at) % HoleUnit));
            if (piece == HoleUnit && buffer.Slice(at, piece).IndexOfAnyExcept((byte)0) < 0)
            {
                if (at > runStart)
                {
                    FlushHole();
                    LibC.WriteAll(_fd, buffer[runStart..at]);
                }
                _pendingHole += piece;
                runStart = at + piece;
            }
            at += piece;
        }
        if (at > runStart)
        {
            FlushHole();
            LibC.WriteAll(_fd, buffer[runStart..at]);
        }
        _position += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    private void FlushHole()
    {
        if (_pendingHole == 0) return;
        LibC.SeekForward(_fd, _pendingHole);
        _pendingHole = 0;
    }

    /// <summary>Ends a written file: a trailing hole becomes the file's size (a seek alone does not extend it).</summary>
    public void Finish()
    {
        if (_pendingHole > 0)
        {
            LibC.Truncate(_fd, _position);
            _pendingHole = 0;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (_fd >= 0)
        {
            try
            {
                if (disposing && _write) Finish();
            }
            finally
            {
                LibC.Close(_fd);
                _fd = -1;
            }
        }
        base.Dispose(disposing);
    }

    ~PosixFileStream() => Dispose(false);

    public override bool CanRead => _fd >= 0 && !_write;
    public override bool CanSeek => false;
    public override bool CanWrite => _fd >= 0 && _write;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _write ? _position : throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
