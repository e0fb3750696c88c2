using System.Buffers;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Treechunk.Posix;

namespace Treechunk.Ostree;

/// <summary>
/// Writing a repository: init, loose objects and refs. Every object is staged in tmp/ and
/// renamed into objects/ only once complete and checksummed, so a crash never leaves a
/// truncated object under a valid name; refs are written last for the same reason.
/// All object writers are safe to call from several threads at once.
/// </summary>
public sealed partial class OstreeRepo
{
    private const int CopyBufferSize = 128 * 1024;
    private static long _tempCounter;
    private readonly bool[] _objectDirReady = new bool[256];

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
            var config = System.IO.Path.Join(path, "config");
            var temp = System.IO.Path.Join(path, "tmp", $"config.{Environment.ProcessId}.tmp");
            File.WriteAllText(temp, $"[core]\nrepo_version=1\nmode={ModeName(mode)}\n", new UTF8Encoding(false));
            File.Move(temp, config, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"cannot create OSTree repository {path}: {e.Message}", ExitCodes.EnvironmentError, e);
        }
        return new OstreeRepo(path, mode);
    }

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
        if (File.Exists(dest)) return checksum;
        var temp = NewTempPath();
        try
        {
            File.WriteAllBytes(temp, variant);
            Publish(temp, dest, checksum);
        }
        finally { DeleteQuietly(temp); }
        return checksum;
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
        var temp = NewTempPath();
        try
        {
            switch (Mode)
            {
                case RepoMode.Archive:
                    WriteArchiveObject(temp, header, content, size, hash);
                    break;
                case RepoMode.BareUser:
                    WriteBareUserObject(temp, header, content, size, hash);
                    break;
                default:
                    WriteBareObject(temp, header, content, size, hash);
                    break;
            }
            var checksum = Convert.ToHexStringLower(hash.GetHashAndReset());
            Publish(temp, ObjectPath(checksum, ObjectType.File), checksum);
            return checksum;
        }
        finally { DeleteQuietly(temp); }
    }

    private static void WriteArchiveObject(string temp, FileHeader header, Stream? content, long size, IncrementalHash hash)
    {
        using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 64 * 1024);
        file.Write(header.FramedArchive((ulong)size));
        if (content == null) return;
        if (size == 0)
        {
            // DeflateStream writes nothing at all for empty input; ostree's reader expects a
            // complete (empty, final) deflate stream, which is these two bytes.
            file.Write([0x03, 0x00]);
            CopyHashed(content, Stream.Null, 0, hash);
            return;
        }
        // Level 6 is ostree's default (core.zlib-level) and zlib's.
        using var deflate = new DeflateStream(file, new ZLibCompressionOptions { CompressionLevel = 6 }, leaveOpen: true);
        CopyHashed(content, deflate, size, hash);
    }

    private static void WriteBareUserObject(string temp, FileHeader header, Stream? content, long size, IncrementalHash hash)
    {
        // bare-user keeps the real metadata in an xattr and makes the object itself a plain
        // file an unprivileged user can always read back: symlinks become files holding the
        // target and a NUL, and setuid/setgid/sticky and others' write are dropped.
        int fileMode;
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 64 * 1024))
        {
            if (content == null)
            {
                file.Write(Encoding.UTF8.GetBytes(header.SymlinkTarget));
                file.WriteByte(0);
                fileMode = 0x1A4; // 0644
            }
            else
            {
                CopyHashed(content, file, size, hash);
                fileMode = (int)(header.Mode & 0x1FD) | 0x100; // (mode & 0775) | 0400
            }
        }
        var meta = new DirMeta(header.Uid, header.Gid, header.Mode, header.Xattrs).Serialize();
        LibC.SetXattr(temp, "user.ostreemeta", meta);
        LibC.Chmod(temp, fileMode);
    }

    private static void WriteBareObject(string temp, FileHeader header, Stream? content, long size, IncrementalHash hash)
    {
        if (content == null)
        {
            File.CreateSymbolicLink(temp, header.SymlinkTarget);
            LibC.LChown(temp, (int)header.Uid, (int)header.Gid);
            foreach (var (name, value) in header.Xattrs) LibC.SetXattr(temp, name, value);
            return;
        }
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 64 * 1024))
            CopyHashed(content, file, size, hash);
        // chown before chmod: chown clears setuid/setgid.
        LibC.LChown(temp, (int)header.Uid, (int)header.Gid);
        LibC.Chmod(temp, (int)(header.Mode & 0xFFF));
        foreach (var (name, value) in header.Xattrs) LibC.SetXattr(temp, name, value);
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

    /// <summary>Moves a finished temp object to its final name; an object already there is identical by construction (dedup).</summary>
    private void Publish(string temp, string dest, string checksum)
    {
        if (LibC.TryLStat(dest) != null) return;
        EnsureObjectDir(checksum);
        // rename(2) replaces atomically, so a concurrent writer of the same object is harmless.
        if (rename(Encoding.UTF8.GetBytes(temp + "\0"), Encoding.UTF8.GetBytes(dest + "\0")) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot store object {dest}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
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
        var temp = NewTempPath();
        try
        {
            File.WriteAllText(temp, checksum + "\n");
            File.Move(temp, file, overwrite: true);
        }
        finally { DeleteQuietly(temp); }
    }

    /// <summary>One syncfs for the whole repository instead of an fsync per object.</summary>
    private void Sync()
    {
        using var handle = File.OpenHandle(System.IO.Path.Join(Path, "config"), FileMode.Open, FileAccess.Read);
        if (syncfs((int)handle.DangerousGetHandle()) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot flush {Path} to disk: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int syncfs(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int rename(byte[] oldpath, byte[] newpath);
}
