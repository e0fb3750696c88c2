using System.Buffers;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Treechunk.IO;
using Treechunk.Posix;

namespace Treechunk.Ostree;

/// <summary>
/// Writing a repository: init, loose objects and refs. Every object is staged in tmp/ and
/// gets its name under objects/ only once complete and checksummed, so a crash never leaves a
/// truncated object under a valid name; refs are written last for the same reason.
/// All object writers are safe to call from several threads at once.
/// </summary>
public sealed partial class OstreeRepo
{
    private const int CopyBufferSize = 128 * 1024;
    private static long _tempCounter;
    private readonly bool[] _objectDirReady = new bool[256];

    /// <summary>Stage objects as named files in tmp/ and rename them, as where O_TMPFILE is missing (tests use it to cover that path).</summary>
    internal bool NamedTempFiles { get; set; }

    /// <summary>
    /// Creates a repository as <c>ostree init --mode=MODE</c> does (same config text and
    /// directories). An existing repository of the same mode is opened as is, like ostree; unlike
    /// ostree we refuse a non-empty directory that is not a repository, since writing objects
    /// into someone's unrelated directory is never what was meant.
    /// </summary>
    public static OstreeRepo Init(string path, RepoMode mode)
    {
        if (mode == RepoMode.BareUserOnly)
            throw new TreechunkException("bare-user-only repositories are not supported for writing (use archive, bare-user or bare)");
        path = System.IO.Path.GetFullPath(path);
        if (File.Exists(path))
            throw new TreechunkException($"{path} exists and is not a directory");
        if (Directory.Exists(path))
        {
            if (File.Exists(System.IO.Path.Join(path, "config")))
            {
                var existing = Open(path);
                if (existing.Mode != mode)
                    throw new TreechunkException($"{path} is already an OSTree repository in mode {ModeName(existing.Mode)}, not {ModeName(mode)}");
                return existing;
            }
            if (Directory.EnumerateFileSystemEntries(path).Any())
                throw new TreechunkException($"{path} is not empty and is not an OSTree repository; refusing to initialise a repository there");
        }
        try
        {
            foreach (var dir in new[] { "objects", "refs/heads", "refs/mirrors", "refs/remotes", "state", "tmp/cache", "extensions" })
                Directory.CreateDirectory(System.IO.Path.Join(path, dir));
            // config last: its presence is what makes the directory a repository.
            using var config = AtomicFile.CreateIn(System.IO.Path.Join(path, "tmp"), "config");
            config.Stream.Write(Encoding.UTF8.GetBytes($"[core]\nrepo_version=1\nmode={ModeName(mode)}\n"));
            config.Commit(System.IO.Path.Join(path, "config"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"cannot create OSTree repository {path}: {e.Message}", ExitCodes.EnvironmentError, e);
        }
        return new OstreeRepo(path, mode);
    }

    /// <summary>Opens the repository at <paramref name="path"/> whatever its mode, or creates it in <paramref name="mode"/> when there is none.</summary>
    public static OstreeRepo OpenOrInit(string path, RepoMode mode) =>
        File.Exists(System.IO.Path.Join(path, "config")) ? Open(path) : Init(path, mode);

    public bool HasObject(string checksum, ObjectType type) => File.Exists(ObjectPath(checksum, type));

    private void EnsureWritable()
    {
        if (Mode == RepoMode.BareUserOnly)
            throw new TreechunkException($"{Path}: writing to bare-user-only repositories is not supported (use archive, bare-user or bare)");
    }

    /// <summary>Stores a metadata object (dirtree, dirmeta, commit, commitmeta) and returns its checksum.</summary>
    public string WriteMetadata(ObjectType type, byte[] variant)
    {
        if (type == ObjectType.File) throw new ArgumentException("content objects go through WriteContent", nameof(type));
        EnsureWritable();
        var checksum = OstreeObjects.Sha256Hex(variant);
        var dest = ObjectPath(checksum, type);
        if (LibC.TryLStat(dest) != null) return checksum;
        using var staged = StagedFile.Create(this);
        staged.Stream.Write(variant);
        staged.SetMode(0x1A4);
        Publish(staged, dest, checksum);
        return checksum;
    }

    /// <summary>
    /// Stores a commit's detached metadata (a{sv}), which is named after the commit it belongs
    /// to, not after its own bytes. Replaces an existing one, as ostree does.
    /// </summary>
    public void WriteCommitMeta(string commitChecksum, byte[] variant)
    {
        EnsureWritable();
        GVariant.Parse(OstreeObjects.CommitMetaSignature, variant); // refuse garbage before it lands in the repo
        var dest = ObjectPath(commitChecksum, ObjectType.CommitMeta);
        using var staged = StagedFile.Create(this);
        staged.Stream.Write(variant);
        staged.SetMode(0x1A4);
        if (File.Exists(dest)) File.Delete(dest);
        Publish(staged, dest, commitChecksum);
    }

    /// <summary>
    /// Stores a content object: a regular file (content of exactly <paramref name="size"/>
    /// bytes, read once) or a symlink (content null). Returns the checksum, which is the same in
    /// every repository mode.
    /// </summary>
    public string WriteContent(FileHeader header, Stream? content, long size)
    {
        EnsureWritable();
        bool symlink = header.IsSymlink;
        if (!symlink && (header.Mode & FileHeader.TypeMask) != FileHeader.Regular)
            throw new TreechunkException($"OSTree content objects are regular files or symlinks, not mode {Convert.ToString(header.Mode, 8)}");
        if (symlink ? content != null || size != 0 : content == null || size < 0)
            throw new ArgumentException("a symlink has no content stream; a regular file needs one with a non-negative size");

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header.Framed());
        if (Mode == RepoMode.Bare && symlink)
            return WriteBareSymlink(header, hash);
        using var staged = StagedFile.Create(this);
        switch (Mode)
        {
            case RepoMode.Archive:
                WriteArchiveObject(staged, header, content, size, hash);
                break;
            case RepoMode.BareUser:
                WriteBareUserObject(staged, header, content, size, hash);
                break;
            default:
                CopyHashed(content!, staged.Stream, size, hash);
                // chown before chmod: chown clears setuid/setgid.
                staged.SetOwner(header.Uid, header.Gid);
                staged.SetMode((int)(header.Mode & 0xFFF));
                foreach (var (name, value) in header.Xattrs) staged.SetXattr(name, value);
                break;
        }
        var checksum = Convert.ToHexStringLower(hash.GetHashAndReset());
        Publish(staged, ObjectPath(checksum, ObjectType.File), checksum);
        return checksum;
    }

    private static void WriteArchiveObject(StagedFile staged, FileHeader header, Stream? content, long size, IncrementalHash hash)
    {
        staged.Stream.Write(header.FramedArchive((ulong)size));
        staged.SetMode(0x1A4);
        if (content == null) return;
        if (size == 0)
        {
            // DeflateStream writes nothing at all for empty input; ostree's reader expects a
            // complete (empty, final) deflate stream, which is these two bytes.
            staged.Stream.Write([0x03, 0x00]);
            CopyHashed(content, Stream.Null, 0, hash);
            return;
        }
        // Level 6 is ostree's default (core.zlib-level) and zlib's.
        using var deflate = new DeflateStream(staged.Stream, new ZLibCompressionOptions { CompressionLevel = 6 }, leaveOpen: true);
        CopyHashed(content, deflate, size, hash);
    }

    private static void WriteBareUserObject(StagedFile staged, FileHeader header, Stream? content, long size, IncrementalHash hash)
    {
        // bare-user keeps the real metadata in an xattr and makes the object itself a plain
        // file an unprivileged user can always read back: symlinks become files holding the
        // target and a NUL, and setuid/setgid/sticky and others' write are dropped.
        if (content == null)
        {
            staged.Stream.Write(Encoding.UTF8.GetBytes(header.SymlinkTarget));
            staged.Stream.WriteByte(0);
            staged.SetMode(0x1A4); // 0644
        }
        else
        {
            CopyHashed(content, staged.Stream, size, hash);
            staged.SetMode((int)(header.Mode & 0x1FD) | 0x100); // (mode & 0775) | 0400
        }
        staged.SetXattr("user.ostreemeta", new DirMeta(header.Uid, header.Gid, header.Mode, header.Xattrs).Serialize());
    }

    /// <summary>A bare repository stores symlinks as symlinks, which cannot be anonymous temp files: made in tmp/ and renamed.</summary>
    private string WriteBareSymlink(FileHeader header, IncrementalHash hash)
    {
        var checksum = Convert.ToHexStringLower(hash.GetHashAndReset());
        var dest = ObjectPath(checksum, ObjectType.File);
        if (LibC.TryLStat(dest) != null) return checksum;
        var temp = NewTempPath();
        try
        {
            File.CreateSymbolicLink(temp, header.SymlinkTarget);
            LibC.LChown(temp, (int)header.Uid, (int)header.Gid);
            foreach (var (name, value) in header.Xattrs) LibC.SetXattr(temp, name, value);
            EnsureObjectDir(checksum);
            Rename(temp, dest);
        }
        finally { DeleteQuietly(temp); }
        return checksum;
    }

    /// <summary>Copies exactly <paramref name="size"/> bytes, hashing them on the way; a file that changed size while being read is an error, not a silently wrong object.</summary>
    private static void CopyHashed(Stream source, Stream dest, long size, IncrementalHash hash)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        try
        {
            long total = 0;
            int n;
            while ((n = source.Read(buffer, 0, buffer.Length)) > 0)
            {
                total += n;
                if (total > size) break;
                hash.AppendData(buffer, 0, n);
                dest.Write(buffer, 0, n);
            }
            if (total != size)
                throw new TreechunkException($"file content is {(total > size ? "larger" : "smaller")} than its recorded size {size} (changed while reading?)");
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Gives a finished staged object its final name; an object already there is identical by construction (dedup).</summary>
    private void Publish(StagedFile staged, string dest, string checksum)
    {
        if (LibC.TryLStat(dest) != null) return;
        EnsureObjectDir(checksum);
        staged.Publish(dest);
    }

    private void EnsureObjectDir(string checksum)
    {
        int index = Convert.ToInt32(checksum[..2], 16);
        if (Volatile.Read(ref _objectDirReady[index])) return;
        Directory.CreateDirectory(System.IO.Path.Join(Path, "objects", checksum[..2]));
        Volatile.Write(ref _objectDirReady[index], true);
    }

    private string NewTempPath() =>
        System.IO.Path.Join(Path, "tmp", $"treechunk-{Environment.ProcessId}-{Interlocked.Increment(ref _tempCounter)}.tmp");

    private static void DeleteQuietly(string path)
    {
        try
        {
            if (LibC.TryLStat(path) != null) File.Delete(path);
        }
        catch (IOException) { /* a leftover temp file is harmless; ostree prunes tmp/ too */ }
    }

    /// <summary>rename(2), which replaces atomically, so a concurrent writer of the same object is harmless.</summary>
    private static void Rename(string from, string to) => LibC.Rename(from, to);

    /// <summary>
    /// An object being written. Preferably an anonymous O_TMPFILE in tmp/ that is linked into
    /// objects/ when complete: no name to clean up after a crash, and no cross-directory
    /// rename, which takes a filesystem-wide lock that parallel writers otherwise fight over.
    /// Falls back to a named temp file and rename where O_TMPFILE is unavailable.
    /// </summary>
    private sealed class StagedFile : IDisposable
    {
        private static int _tmpfileUnsupported;
        private readonly SafeFileHandle _handle;
        private readonly string? _tempPath;
        public FileStream Stream { get; }

        private StagedFile(SafeFileHandle handle, string? tempPath)
        {
            _handle = handle;
            _tempPath = tempPath;
            Stream = new FileStream(handle, FileAccess.Write, bufferSize: 64 * 1024);
        }

        public static StagedFile Create(OstreeRepo repo)
        {
            if (!repo.NamedTempFiles && Volatile.Read(ref _tmpfileUnsupported) == 0 && TmpfileFlag() is int flag)
            {
                int fd = LibC.TryOpen(System.IO.Path.Join(repo.Path, "tmp"), flag | LibC.O_WRONLY | LibC.O_CLOEXEC, 0x180);
                if (fd >= 0) return new StagedFile(new SafeFileHandle(fd, ownsHandle: true), null);
                int errno = LibC.LastError;
                if (errno is not (LibC.ENOTSUP or LibC.EISDIR or LibC.EINVAL))
                    throw new IOException($"cannot create a temporary file in {repo.Path}/tmp: {LibC.ErrorText(errno)}", errno);
                Volatile.Write(ref _tmpfileUnsupported, 1);
            }
            var temp = repo.NewTempPath();
            var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            return new StagedFile(handle, temp);
        }

        private int Fd => (int)_handle.DangerousGetHandle();

        public void SetMode(int mode) => LibC.FChmod(Fd, mode);

        public void SetOwner(uint uid, uint gid) => LibC.FChown(Fd, (int)uid, (int)gid);

        public void SetXattr(string name, byte[] value) => LibC.SetXattr(Fd, name, value);

        public void Publish(string dest)
        {
            Stream.Flush();
            if (_tempPath != null)
            {
                Rename(_tempPath, dest);
                return;
            }
            int errno = LibC.LinkOpenFile(Fd, dest);
            if (errno is 0 or LibC.EEXIST) return; // EEXIST: another thread stored the same object meanwhile
            throw new IOException($"cannot store {dest}: {LibC.ErrorText(errno)}", errno);
        }

        public void Dispose()
        {
            Stream.Dispose();
            _handle.Dispose();
            if (_tempPath != null) DeleteQuietly(_tempPath);
        }

        /// <summary>O_TMPFILE includes O_DIRECTORY, whose value differs between architectures.</summary>
        private static int? TmpfileFlag() => RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 0x400000 | 0x10000,
            Architecture.Arm64 => 0x400000 | 0x4000,
            _ => null,
        };
    }

    /// <summary>
    /// Points refs/heads/NAME at a commit. Flushes the filesystem first so that a ref on disk
    /// never names objects that a crash could still lose.
    /// </summary>
    public void SetRef(string name, string checksum)
    {
        ValidateRefName(name);
        OstreeObjects.ValidateChecksum(checksum);
        if (!HasObject(checksum, ObjectType.Commit))
            throw new TreechunkException($"{Path}: cannot point ref '{name}' at {checksum}: no such commit");
        Sync();
        var file = System.IO.Path.Join(Path, "refs", "heads", name);
        if (Directory.Exists(file))
            throw new TreechunkException($"{Path}: cannot write ref '{name}': refs/heads/{name} is a directory of other refs");
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        // Staged in tmp/, not beside the ref: a leftover there would look like a ref.
        using var staged = AtomicFile.CreateIn(System.IO.Path.Join(Path, "tmp"), "ref");
        staged.Stream.Write(Encoding.ASCII.GetBytes(checksum + "\n"));
        staged.Commit(file);
    }

    /// <summary>One syncfs for the whole repository instead of an fsync per object.</summary>
    private void Sync()
    {
        using var handle = File.OpenHandle(System.IO.Path.Join(Path, "config"), FileMode.Open, FileAccess.Read);
        LibC.SyncFilesystem((int)handle.DangerousGetHandle());
    }

    /// <summary>
    /// Holds the repository's shared lock (an OFD read lock on .lock, as libostree takes for a
    /// commit transaction) so that `ostree prune`, which locks exclusively, cannot delete objects
    /// we have written but not yet referenced.
    /// </summary>
    public IDisposable LockShared(TimeSpan? timeout = null)
    {
        // 0660 and O_CLOEXEC as libostree creates it.
        int fd = LibC.TryOpen(System.IO.Path.Join(Path, ".lock"), LibC.O_RDWR | LibC.O_CREAT | LibC.O_CLOEXEC, 0x1B0);
        if (fd < 0) throw new TreechunkException($"cannot lock {Path}: {LibC.ErrorText(LibC.LastError)}", ExitCodes.EnvironmentError);
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            int errno = LibC.TryReadLock(fd);
            if (errno == 0) return handle;
            // EAGAIN, EACCES: someone holds it exclusively.
            if (errno is not (LibC.EAGAIN or LibC.EACCES) || DateTime.UtcNow > deadline)
            {
                handle.Dispose();
                throw new TreechunkException(errno is LibC.EAGAIN or LibC.EACCES
                    ? $"{Path} is locked by another process (ostree prune?); try again later"
                    : $"cannot lock {Path}: {LibC.ErrorText(errno)}", ExitCodes.EnvironmentError);
            }
            Thread.Sleep(100);
        }
    }
}
