using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Treechunk.Posix;

namespace Treechunk.Ostree;

public enum ObjectProblem { Missing, Corrupt }

/// <summary>
/// An object that is absent or fails verification. Carries the object's identity so that fsck
/// can report every bad object instead of stopping at the first.
/// </summary>
public sealed class OstreeObjectException : TreechunkException
{
    public string Checksum { get; }
    public ObjectType Type { get; }
    public ObjectProblem Problem { get; }
    /// <summary>What is wrong, without the object name (empty for a missing object).</summary>
    public string Detail { get; }

    public OstreeObjectException(string repo, string checksum, ObjectType type, RepoMode mode, ObjectProblem problem, string detail, Exception? inner = null)
        : base($"{(problem == ObjectProblem.Missing ? "missing" : "corrupt")} object {checksum}.{OstreeObjects.Extension(type, mode)} in {repo}{(detail.Length > 0 ? ": " + detail : "")}",
            problem == ObjectProblem.Missing ? ExitCodes.BadInput : ExitCodes.VerificationFailed, inner)
    {
        Checksum = checksum;
        Type = type;
        Problem = problem;
        Detail = detail;
    }
}

/// <summary>
/// A content (file) object opened for reading: its header, its size and its content. The
/// content stream checks the object's checksum once it has been read to the end and throws an
/// <see cref="OstreeObjectException"/> if it does not match; a symlink's header is checked
/// when it is opened.
/// </summary>
public sealed class ContentObject : IDisposable
{
    public string Checksum { get; }
    public FileHeader Header { get; }
    /// <summary>Content size in bytes; 0 for a symlink.</summary>
    public long Size { get; }
    public Stream Content { get; }

    internal ContentObject(string checksum, FileHeader header, long size, Stream content)
    {
        Checksum = checksum;
        Header = header;
        Size = size;
        Content = content;
    }

    public bool IsSymlink => Header.IsSymlink;

    public void Dispose() => Content.Dispose();
}

public sealed partial class OstreeRepo
{
    /// <summary>libostree's own limit for a metadata object; anything bigger is not one of its objects.</summary>
    private const long MaxMetadataSize = 128L * 1024 * 1024;

    private const string BareUserMetaXattr = "user.ostreemeta";

    public string ObjectName(string checksum, ObjectType type) => $"{checksum}.{OstreeObjects.Extension(type, Mode)}";

    // HasObject lives in OstreeRepo.Write.cs (File.Exists, which is true for a dangling symlink object too).

    /// <summary>A metadata object's bytes, verified against its name.</summary>
    public byte[] ReadMetadataObject(string checksum, ObjectType type)
    {
        if (type is ObjectType.File or ObjectType.CommitMeta)
            throw new ArgumentException($"{type} objects are not named by their checksum", nameof(type));
        OstreeObjects.ValidateChecksum(checksum);
        var data = ReadObjectFile(checksum, type)
                   ?? throw Problem(checksum, type, ObjectProblem.Missing, "");
        var actual = OstreeObjects.Sha256Hex(data);
        if (actual != checksum) throw Problem(checksum, type, ObjectProblem.Corrupt, $"its content has checksum {actual}");
        return data;
    }

    public OstreeCommit ReadCommit(string checksum) =>
        Parse(checksum, ObjectType.Commit, ReadMetadataObject(checksum, ObjectType.Commit), d => OstreeCommit.Parse(d));

    public DirTree ReadDirTree(string checksum) =>
        Parse(checksum, ObjectType.DirTree, ReadMetadataObject(checksum, ObjectType.DirTree), d => DirTree.Parse(d));

    public DirMeta ReadDirMeta(string checksum)
    {
        var meta = Parse(checksum, ObjectType.DirMeta, ReadMetadataObject(checksum, ObjectType.DirMeta), d => DirMeta.Parse(d));
        if ((meta.Mode & FileHeader.TypeMask) != FileHeader.Directory)
            throw Problem(checksum, ObjectType.DirMeta, ObjectProblem.Corrupt, $"mode 0{Convert.ToString(meta.Mode, 8)} is not a directory");
        return meta;
    }

    /// <summary>
    /// The commit's detached metadata (signatures, and whatever --add-detached-metadata-string
    /// put there), or null when it has none. It cannot be verified: it is named after the
    /// commit, not after its own content.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Variant>>? ReadCommitMeta(string commit)
    {
        OstreeObjects.ValidateChecksum(commit);
        var data = ReadObjectFile(commit, ObjectType.CommitMeta);
        if (data == null) return null;
        return Parse(commit, ObjectType.CommitMeta, data, d =>
            ((List<object>)GVariant.Parse(OstreeObjects.CommitMetaSignature, d)).Cast<KeyValuePair<object, object>>()
                .Select(kv => KeyValuePair.Create((string)kv.Key, (Variant)kv.Value)).ToList());
    }

    /// <summary>The whole object file, or null when it does not exist.</summary>
    private byte[]? ReadObjectFile(string checksum, ObjectType type)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(ObjectPath(checksum, type), FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        using (fs)
        {
            if (fs.Length > MaxMetadataSize)
                throw Problem(checksum, type, ObjectProblem.Corrupt, $"{fs.Length} bytes is more than any metadata object may have");
            var data = new byte[fs.Length];
            fs.ReadExactly(data);
            return data;
        }
    }

    private T Parse<T>(string checksum, ObjectType type, byte[] data, Func<byte[], T> parse)
    {
        try
        {
            return parse(data);
        }
        catch (OstreeObjectException)
        {
            throw;
        }
        catch (TreechunkException e)
        {
            // GVariant errors and invalid names/checksums inside the object.
            throw Problem(checksum, type, ObjectProblem.Corrupt, e.Message, e);
        }
    }

    private OstreeObjectException Problem(string checksum, ObjectType type, ObjectProblem problem, string detail, Exception? inner = null) =>
        new(Path, checksum, type, Mode, problem, detail, inner);

    // ---------------------------------------------------------------- content objects

    /// <summary>
    /// Opens a content object. Its header is read (and for a symlink verified) now; the content
    /// is verified as it is streamed, when the last byte has been read.
    /// </summary>
    public ContentObject OpenContent(string checksum) => Open(checksum, headerOnly: false);

    /// <summary>
    /// A content object's header and size, read without opening its content where the mode
    /// allows (bare modes keep the header in the inode and its xattrs): what listing a commit
    /// needs of every object. A symlink's header is verified as in <see cref="OpenContent"/>.
    /// </summary>
    public (FileHeader Header, long Size) ReadContentHeader(string checksum)
    {
        using var obj = Open(checksum, headerOnly: true);
        return (obj.Header, obj.Size);
    }

    private ContentObject Open(string checksum, bool headerOnly)
    {
        var path = ObjectPath(checksum, ObjectType.File);
        return Mode switch
        {
            RepoMode.Archive => OpenArchive(checksum, path, headerOnly),
            RepoMode.Bare => OpenBare(checksum, path, headerOnly),
            RepoMode.BareUser => OpenBareUser(checksum, path, headerOnly),
            _ => OpenBareUserOnly(checksum, path, headerOnly),
        };
    }

    private OstreeObjectException Corrupt(string checksum, string detail, Exception? inner = null) =>
        Problem(checksum, ObjectType.File, ObjectProblem.Corrupt, detail, inner);

    private PosixFileStream OpenObjectStream(string checksum, string path)
    {
        try
        {
            return PosixFileStream.OpenRead(path);
        }
        catch (IOException e) when (e.HResult is LibC.ENOENT or LibC.ENOTDIR)
        {
            throw Problem(checksum, ObjectType.File, ObjectProblem.Missing, "");
        }
        catch (IOException e) when (e.HResult == LibC.ELOOP)
        {
            throw Corrupt(checksum, "is a symlink where a file must be");
        }
    }

    private LibC.FileStatus StatObject(string checksum, string path) =>
        LibC.TryLStat(path) ?? throw Problem(checksum, ObjectType.File, ObjectProblem.Missing, "");

    private ContentObject OpenArchive(string checksum, string path, bool headerOnly)
    {
        var fs = OpenObjectStream(checksum, path);
        try
        {
            Span<byte> prefix = stackalloc byte[8];
            if (fs.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
                throw Corrupt(checksum, "truncated before the end of its header");
            // The 4 bytes after the size are padding; the checksum is over a re-serialised header, so they cannot hide anything.
            uint headerSize = BinaryPrimitives.ReadUInt32BigEndian(prefix);
            var fileSize = fs.FileSize;
            if (headerSize > fileSize - 8)
                throw Corrupt(checksum, $"truncated: its header says {headerSize} bytes but the file has {fileSize - 8} after the size");
            var variant = new byte[headerSize];
            fs.ReadExactly(variant);
            var (header, size) = ParseHeader(checksum, () => FileHeader.ParseArchiveVariant(variant));
            CheckFileType(checksum, header);
            if (header.IsSymlink)
            {
                fs.Dispose();
                return Symlink(checksum, header);
            }
            if (size > long.MaxValue) throw Corrupt(checksum, $"impossible size {size}");
            if (headerOnly)
            {
                fs.Dispose();
                return new ContentObject(checksum, header, (long)size, Stream.Null);
            }
            return new ContentObject(checksum, header, (long)size, new ContentStream(this, checksum, header, (long)size, fs, compressed: true));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    private ContentObject OpenBare(string checksum, string path, bool headerOnly)
    {
        var st = StatObject(checksum, path);
        if (st.IsSymlink)
        {
            var header = new FileHeader(st.Uid, st.Gid, st.Mode, ReadLink(path), LibC.ListXattrs(path));
            return Symlink(checksum, header);
        }
        if (!st.IsRegular) throw Corrupt(checksum, $"is neither a regular file nor a symlink (mode 0{Convert.ToString(st.Mode, 8)})");
        return PlainFile(checksum, path, new FileHeader(st.Uid, st.Gid, st.Mode, "", LibC.ListXattrs(path)), st.Size, headerOnly);
    }

    /// <summary>
    /// bare-user objects are always plain files the repo's user owns; the committed owner, mode
    /// and xattrs live in user.ostreemeta, and a symlink is a file holding its target.
    /// </summary>
    private ContentObject OpenBareUser(string checksum, string path, bool headerOnly)
    {
        var st = StatObject(checksum, path);
        if (!st.IsRegular) throw Corrupt(checksum, "is not a regular file, as every bare-user object must be");
        var raw = LibC.GetXattr(path, BareUserMetaXattr)
                  ?? throw Corrupt(checksum, $"has no {BareUserMetaXattr} xattr holding its owner and mode");
        // Same shape as a dirmeta: (uuua(ayay)), integers big-endian.
        var meta = ParseHeader(checksum, () => DirMeta.Parse(raw));
        if ((meta.Mode & FileHeader.TypeMask) != FileHeader.Symlink)
        {
            var header = new FileHeader(meta.Uid, meta.Gid, meta.Mode, "", meta.Xattrs);
            CheckFileType(checksum, header);
            return PlainFile(checksum, path, header, st.Size, headerOnly);
        }
        var fs = OpenObjectStream(checksum, path);
        try
        {
            var length = fs.FileSize;
            if (length > 64 * 1024) throw Corrupt(checksum, $"symlink target of {length} bytes");
            var bytes = new byte[length];
            fs.ReadExactly(bytes);
            fs.Dispose();
            // ostree writes the target with its terminating NUL.
            var span = bytes.AsSpan();
            if (span.Length > 0 && span[^1] == 0) span = span[..^1];
            var target = DecodeTarget(checksum, span);
            return Symlink(checksum, new FileHeader(meta.Uid, meta.Gid, meta.Mode, target, meta.Xattrs));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>bare-user-only keeps no owner and no xattrs: commits into it canonicalise them to 0 and none.</summary>
    private ContentObject OpenBareUserOnly(string checksum, string path, bool headerOnly)
    {
        var st = StatObject(checksum, path);
        if (st.IsSymlink) return Symlink(checksum, new FileHeader(0, 0, st.Mode, ReadLink(path), []));
        if (!st.IsRegular) throw Corrupt(checksum, $"is neither a regular file nor a symlink (mode 0{Convert.ToString(st.Mode, 8)})");
        return PlainFile(checksum, path, new FileHeader(0, 0, st.Mode, "", []), st.Size, headerOnly);
    }

    /// <summary>
    /// A regular file of a bare mode, whose header is known from its inode and xattrs before the
    /// object is opened: listing a commit (<paramref name="headerOnly"/>) never opens it.
    /// </summary>
    private ContentObject PlainFile(string checksum, string path, FileHeader header, long size, bool headerOnly) =>
        new(checksum, header, size, headerOnly ? Stream.Null : new ContentStream(this, checksum, header, size, OpenObjectStream(checksum, path), compressed: false));

    private ContentObject Symlink(string checksum, FileHeader header)
    {
        VerifyChecksum(checksum, header, SHA256.HashData(header.Framed()));
        return new ContentObject(checksum, header, 0, Stream.Null);
    }

    private void VerifyChecksum(string checksum, FileHeader header, byte[] hash)
    {
        var actual = Convert.ToHexStringLower(hash);
        if (actual != checksum)
            throw Corrupt(checksum, $"its {(header.IsSymlink ? "header" : "header and content")} have checksum {actual}");
    }

    private void CheckFileType(string checksum, FileHeader header)
    {
        uint type = header.Mode & FileHeader.TypeMask;
        if (type != FileHeader.Regular && type != FileHeader.Symlink)
            throw Corrupt(checksum, $"mode 0{Convert.ToString(header.Mode, 8)} is neither a regular file nor a symlink");
    }

    private T ParseHeader<T>(string checksum, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (OstreeObjectException)
        {
            throw;
        }
        catch (TreechunkException e)
        {
            throw Corrupt(checksum, "invalid header: " + e.Message, e);
        }
    }

    private string ReadLink(string path) =>
        new FileInfo(path).LinkTarget ?? throw new IOException($"cannot read symlink {path}");

    private string DecodeTarget(string checksum, ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Corrupt(checksum, "symlink target is not valid UTF-8");
        }
    }

    /// <summary>
    /// Hashes the header and then every content byte as it passes, and checks the object's
    /// checksum the moment the last byte (by the header's size) has been read. Never reads past
    /// that size except to make sure nothing follows it.
    /// </summary>
    private sealed class ContentStream : IO.ReadOnlyStream
    {
        private readonly OstreeRepo _repo;
        private readonly string _checksum;
        private readonly FileHeader _header;
        private readonly long _size;
        private readonly Stream _file;
        private readonly bool _compressed;
        // Created on the first read: opening a commit reads thousands of headers and no content,
        // and an inflater and a hash context per object were most of that cost.
        private Stream? _inner;
        private IncrementalHash? _hash;
        private long _read;
        private bool _done;

        /// <param name="file">The object file positioned at its content; raw deflate when <paramref name="compressed"/>.</param>
        public ContentStream(OstreeRepo repo, string checksum, FileHeader header, long size, Stream file, bool compressed)
        {
            _repo = repo;
            _checksum = checksum;
            _header = header;
            _size = size;
            _file = file;
            _compressed = compressed;
        }

        private IncrementalHash Hash
        {
            get
            {
                if (_hash == null)
                {
                    _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    _hash.AppendData(_header.Framed());
                }
                return _hash;
            }
        }

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            if (_done || buffer.Length == 0) return 0;
            long remaining = _size - _read;
            if (remaining == 0)
            {
                Finish();
                return 0;
            }
            var slice = buffer[..(int)Math.Min(buffer.Length, remaining)];
            int n = InnerRead(slice);
            if (n == 0)
                throw _repo.Corrupt(_checksum, $"truncated: content ends after {_read} of {_size} bytes");
            Hash.AppendData(slice[..n]);
            _read += n;
            if (_read == _size) Finish();
            return n;
        }

        private int InnerRead(Span<byte> buffer)
        {
            try
            {
                _inner ??= _compressed ? new DeflateStream(_file, CompressionMode.Decompress) : _file;
                return _inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw _repo.Corrupt(_checksum, "bad compressed data: " + e.Message, e);
            }
        }

        private void Finish()
        {
            _done = true;
            Span<byte> one = stackalloc byte[1];
            if (InnerRead(one) != 0)
                throw _repo.Corrupt(_checksum, $"{(_compressed ? "compressed content" : "content")} is longer than the {_size} bytes its header gives");
            _repo.VerifyChecksum(_checksum, _header, Hash.GetHashAndReset());
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                (_inner ?? _file).Dispose();
                _hash?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
