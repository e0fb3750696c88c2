using System.Runtime.InteropServices;

namespace Treechunk.Posix;

/// <summary>
/// The POSIX calls .NET does not expose, and the ones it exposes only through strings it would
/// re-encode (see <see cref="FileNames"/>): lstat with owner and device numbers (statx, whose
/// struct layout is the same on every Linux architecture), extended attributes, lchown, mknod,
/// links, directories and mtimes by name, file descriptors for the OSTree writer. Every
/// P/Invoke of the library is here; errors come back as <see cref="IOException"/> naming the
/// path (escaped for display) and the errno text.
/// </summary>
public static unsafe partial class LibC
{
    public const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtSymlinkFollow = 0x400;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EEXIST = 17;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ERANGE = 34;
    public const int ELOOP = 40;
    public const int ENODATA = 61;
    public const int ENOTSUP = 95;

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(112)] public long MtimeSec;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [LibraryImport("libc", SetLastError = true)] private static partial int statx(int dirfd, byte* path, int flags, uint mask, Statx* buf);
    [LibraryImport("libc", SetLastError = true)] private static partial nint llistxattr(byte* path, byte* list, nint size);
    [LibraryImport("libc", SetLastError = true)] private static partial nint lgetxattr(byte* path, byte* name, byte* value, nint size);
    [LibraryImport("libc", SetLastError = true)] private static partial int lsetxattr(byte* path, byte* name, byte* value, nint size, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial int fsetxattr(int fd, byte* name, byte* value, nint size, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial int lchown(byte* path, int owner, int group);
    [LibraryImport("libc", SetLastError = true)] private static partial int fchown(int fd, int owner, int group);
    [LibraryImport("libc", SetLastError = true)] private static partial int chmod(byte* path, uint mode);
    [LibraryImport("libc", SetLastError = true)] private static partial int fchmod(int fd, uint mode);
    [LibraryImport("libc", SetLastError = true)] private static partial int mknod(byte* path, uint mode, ulong dev);
    [LibraryImport("libc")] private static partial uint geteuid();
    [LibraryImport("libc", SetLastError = true)] private static partial nint opendir(byte* path);
    [LibraryImport("libc", SetLastError = true)] private static partial byte* readdir(nint dir);
    [LibraryImport("libc", SetLastError = true)] private static partial int closedir(nint dir);
    [LibraryImport("libc", SetLastError = true)] private static partial nint readlink(byte* path, byte* buf, nint size);
    [LibraryImport("libc", SetLastError = true)] private static partial int link(byte* oldpath, byte* newpath);
    [LibraryImport("libc", SetLastError = true)] private static partial int linkat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial int symlink(byte* target, byte* linkpath);
    [LibraryImport("libc", SetLastError = true)] private static partial int mkdir(byte* path, uint mode);
    [LibraryImport("libc", SetLastError = true)] private static partial int unlink(byte* path);
    [LibraryImport("libc", SetLastError = true)] private static partial int rmdir(byte* path);
    [LibraryImport("libc", SetLastError = true)] private static partial int rename(byte* oldpath, byte* newpath);
    [LibraryImport("libc", SetLastError = true)] private static partial int utimensat(int dirfd, byte* path, long* times, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial int open(byte* path, int flags, uint mode);
    [LibraryImport("libc", SetLastError = true)] private static partial nint read(int fd, byte* buf, nint count);
    [LibraryImport("libc", SetLastError = true)] private static partial nint write(int fd, byte* buf, nint count);
    [LibraryImport("libc", SetLastError = true)] private static partial long lseek(int fd, long offset, int whence);
    [LibraryImport("libc", SetLastError = true)] private static partial int ftruncate(int fd, long length);
    [LibraryImport("libc", SetLastError = true)] private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)] private static partial int syncfs(int fd);
    [LibraryImport("libc", SetLastError = true)] private static partial int fcntl(int fd, int cmd, FileLock* lk);

    // struct dirent on 64-bit Linux (glibc and musl): d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name.
    private const int DirentNameOffset = 19;

    /// <summary>A NUL-terminated path for a syscall, with the file-name codec applied.</summary>
    internal static byte[] Z(string s) => FileNames.EncodeZ(s);

    internal static IOException Error(string what, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} {FileNames.Display(path)}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    internal static IOException Error(string what)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>
    /// The names in a directory, without "." and "..", in readdir order. One getdents per
    /// buffer and nothing per entry (.NET's enumerator also stats every symlink).
    /// </summary>
    public static List<string> ListDirectory(string path)
    {
        nint dir;
        fixed (byte* p = Z(path)) dir = opendir(p);
        if (dir == 0) throw Error("cannot read directory", path);
        try
        {
            var names = new List<string>();
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                var entry = readdir(dir);
                if (entry == null)
                {
                    if (Marshal.GetLastPInvokeError() != 0) throw Error("cannot read directory", path);
                    return names;
                }
                var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + DirentNameOffset);
                if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) continue;
                names.Add(FileNames.Decode(name));
            }
        }
        finally
        {
            closedir(dir);
        }
    }

    /// <summary>readlink(2): a symlink's target, decoded losslessly.</summary>
    public static string ReadLink(string path)
    {
        var z = Z(path);
        for (int size = 256; ; size *= 4)
        {
            var buf = new byte[size];
            nint n;
            fixed (byte* p = z)
            fixed (byte* b = buf) n = readlink(p, b, size);
            if (n < 0) throw Error("cannot read link", path);
            if (n < size) return FileNames.Decode(buf.AsSpan(0, (int)n));
        }
    }

    /// <summary>link(2); false when the filesystem or the two locations do not allow it (the caller copies instead).</summary>
    public static bool TryLink(string existing, string newPath)
    {
        fixed (byte* a = Z(existing))
        fixed (byte* b = Z(newPath))
            return link(a, b) == 0;
    }

    public static void Link(string existing, string newPath)
    {
        if (!TryLink(existing, newPath)) throw Error("cannot create hardlink", newPath);
    }

    /// <summary>linkat(2) of an open file (O_TMPFILE) into the tree: through /proc/self/fd, else AT_EMPTY_PATH.</summary>
    public static int LinkOpenFile(int fd, string dest)
    {
        var target = Z(dest);
        fixed (byte* proc = Z($"/proc/self/fd/{fd}"))
        fixed (byte* d = target)
            if (linkat(AtFdCwd, proc, AtFdCwd, d, AtSymlinkFollow) == 0) return 0;
        int errno = Marshal.GetLastPInvokeError();
        if (errno != ENOENT) return errno;
        // Without /proc, AT_EMPTY_PATH does the same (it needs CAP_DAC_READ_SEARCH).
        byte empty = 0;
        fixed (byte* d = target)
            if (linkat(fd, &empty, AtFdCwd, d, AtEmptyPath) == 0) return 0;
        return Marshal.GetLastPInvokeError();
    }

    public static void Symlink(string target, string path)
    {
        fixed (byte* t = Z(target))
        fixed (byte* p = Z(path))
            if (symlink(t, p) != 0) throw Error("cannot create symlink", path);
    }

    public static void MkDir(string path, int mode)
    {
        fixed (byte* p = Z(path))
            if (mkdir(p, (uint)mode) != 0) throw Error("cannot create directory", path);
    }

    public static void Unlink(string path)
    {
        fixed (byte* p = Z(path))
            if (unlink(p) != 0) throw Error("cannot remove", path);
    }

    public static void RmDir(string path)
    {
        fixed (byte* p = Z(path))
            if (rmdir(p) != 0) throw Error("cannot remove", path);
    }

    /// <summary>rename(2), which replaces the target atomically.</summary>
    public static void Rename(string from, string to)
    {
        fixed (byte* a = Z(from))
        fixed (byte* b = Z(to))
            if (rename(a, b) != 0) throw Error("cannot rename to", to);
    }

    /// <summary>Sets the mtime (and atime) of a path without following a final symlink.</summary>
    public static void SetMTime(string path, long seconds)
    {
        long* times = stackalloc long[4];
        times[0] = times[2] = seconds;
        times[1] = times[3] = 0;
        fixed (byte* p = Z(path))
            if (utimensat(AtFdCwd, p, times, AtSymlinkNoFollow) != 0) throw Error("cannot set the mtime of", path);
    }

    public static bool IsRoot => geteuid() == 0;

    public static uint EffectiveUid => geteuid();

    public readonly record struct FileStatus(
        uint Mode, uint Uid, uint Gid, uint Nlink, ulong Inode, ulong Device, long Size,
        long MTime, uint RdevMajor, uint RdevMinor)
    {
        public uint FileType => Mode & 0xF000;
        public bool IsDirectory => FileType == 0x4000;
        public bool IsRegular => FileType == 0x8000;
        public bool IsSymlink => FileType == 0xA000;
        public bool IsCharDevice => FileType == 0x2000;
        public bool IsBlockDevice => FileType == 0x6000;
        public bool IsFifo => FileType == 0x1000;
        public bool IsSocket => FileType == 0xC000;
        public int Permissions => (int)(Mode & 0xFFF);
    }

    /// <summary>lstat: never follows a final symlink.</summary>
    public static FileStatus LStat(string path) => TryLStat(path, missingIsNull: false)!.Value;

    /// <summary>lstat that returns null when the path (or a directory on the way) does not exist.</summary>
    public static FileStatus? TryLStat(string path) => TryLStat(path, missingIsNull: true);

    private static FileStatus? TryLStat(string path, bool missingIsNull)
    {
        Statx st;
        int rc;
        fixed (byte* p = Z(path)) rc = statx(AtFdCwd, p, AtSymlinkNoFollow, StatxBasicStats, &st);
        if (rc != 0)
        {
            if (missingIsNull && Marshal.GetLastPInvokeError() is ENOENT or ENOTDIR) return null;
            throw Error("cannot stat", path);
        }
        return new FileStatus(st.Mode, st.Uid, st.Gid, st.Nlink, st.Ino,
            ((ulong)st.DevMajor << 32) | st.DevMinor, (long)st.Size, st.MtimeSec, st.RdevMajor, st.RdevMinor);
    }

    /// <summary>The size of an open file.</summary>
    public static long FileSize(int fd)
    {
        Statx st;
        byte empty = 0;
        if (statx(fd, &empty, AtEmptyPath, StatxBasicStats, &st) != 0) throw Error("cannot stat an open file");
        return (long)st.Size;
    }

    /// <summary>All extended attributes of a path (not following symlinks), sorted by name.</summary>
    public static IReadOnlyList<KeyValuePair<string, byte[]>> ListXattrs(string path)
    {
        var z = Z(path);
        nint size;
        fixed (byte* p = z) size = llistxattr(p, null, 0);
        if (size < 0)
        {
            if (Marshal.GetLastPInvokeError() == ENOTSUP) return [];
            throw Error("cannot list xattrs of", path);
        }
        // Most files have none: the shared empty list, not one list per entry of a big tree.
        if (size == 0) return [];
        var result = new List<KeyValuePair<string, byte[]>>();
        var names = new byte[size];
        fixed (byte* p = z)
        fixed (byte* n = names)
        {
            size = llistxattr(p, n, names.Length);
            if (size < 0) throw Error("cannot list xattrs of", path);
        }
        int start = 0;
        for (int i = 0; i < size; i++)
        {
            if (names[i] != 0) continue;
            var name = FileNames.Decode(names.AsSpan(start, i - start));
            start = i + 1;
            var value = GetXattr(path, name);
            if (value != null) result.Add(new(name, value));
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result;
    }

    public static byte[]? GetXattr(string path, string name)
    {
        var z = Z(path);
        var zn = Z(name);
        fixed (byte* p = z)
        fixed (byte* n = zn)
        {
            // Most values are small: one call into a stack buffer, sized by a second only when not.
            Span<byte> small = stackalloc byte[256];
            fixed (byte* b = small)
            {
                nint got = lgetxattr(p, n, b, small.Length);
                if (got >= 0) return small[..(int)got].ToArray();
                int error = Marshal.GetLastPInvokeError();
                if (error == ENODATA) return null;
                if (error != ERANGE) throw Error($"cannot read xattr {name} of", path);
            }
            while (true)
            {
                nint size = lgetxattr(p, n, null, 0);
                if (size < 0)
                {
                    if (Marshal.GetLastPInvokeError() == ENODATA) return null;
                    throw Error($"cannot read xattr {name} of", path);
                }
                var value = new byte[size];
                fixed (byte* v = value)
                {
                    nint got = lgetxattr(p, n, v, value.Length);
                    if (got < 0 && Marshal.GetLastPInvokeError() == ERANGE) continue; // grew meanwhile
                    if (got < 0) throw Error($"cannot read xattr {name} of", path);
                    return got == value.Length ? value : value[..(int)got];
                }
            }
        }
    }

    public static void SetXattr(string path, string name, byte[] value)
    {
        fixed (byte* p = Z(path))
        fixed (byte* n = Z(name))
        fixed (byte* v = value)
            if (lsetxattr(p, n, v, value.Length, 0) != 0)
                throw Error($"cannot set xattr {name} on", path);
    }

    public static void SetXattr(int fd, string name, byte[] value)
    {
        fixed (byte* n = Z(name))
        fixed (byte* v = value)
            if (fsetxattr(fd, n, v, value.Length, 0) != 0) throw Error($"cannot set xattr {name} on a new file");
    }

    public static void LChown(string path, int uid, int gid)
    {
        fixed (byte* p = Z(path))
            if (lchown(p, uid, gid) != 0) throw Error("cannot change owner of", path);
    }

    public static void FChown(int fd, int uid, int gid)
    {
        if (fchown(fd, uid, gid) != 0) throw Error("cannot set the owner of a new file");
    }

    /// <summary>chmod with all 12 permission bits (setuid/setgid/sticky included); follows symlinks, so never call it on one.</summary>
    public static void Chmod(string path, int mode)
    {
        fixed (byte* p = Z(path))
            if (chmod(p, (uint)mode) != 0) throw Error("cannot change mode of", path);
    }

    public static void FChmod(int fd, int mode)
    {
        if (fchmod(fd, (uint)mode) != 0) throw Error("cannot set the mode of a new file");
    }

    public static void MkNod(string path, EntryKind kind, int mode, int major, int minor)
    {
        uint type = kind switch { EntryKind.Char => 0x2000u, EntryKind.Block => 0x6000u, _ => 0x1000u };
        // glibc's makedev encoding.
        ulong dev = ((ulong)(uint)minor & 0xff) | (((ulong)(uint)major & 0xfff) << 8)
                    | (((ulong)(uint)minor & ~0xffUL) << 12) | (((ulong)(uint)major & ~0xfffUL) << 32);
        fixed (byte* p = Z(path))
            if (mknod(p, type | (uint)(mode & 0xFFF), dev) != 0) throw Error("cannot create node", path);
    }

    public enum EntryKind { Char, Block, Fifo }

    /// <summary>open(2), retried on EINTR; returns the descriptor or -1 with errno in <see cref="LastError"/>.</summary>
    public static int TryOpen(string path, int flags, int mode = 0)
    {
        var z = Z(path);
        int fd;
        fixed (byte* p = z)
            do fd = open(p, flags, (uint)mode);
            while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        return fd;
    }

    public static int Open(string path, int flags, int mode = 0)
    {
        int fd = TryOpen(path, flags, mode);
        if (fd < 0) throw Error("cannot open", path);
        return fd;
    }

    public static int Read(int fd, Span<byte> buffer)
    {
        nint n;
        fixed (byte* p = buffer)
            do n = read(fd, p, buffer.Length);
            while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (n < 0) throw Error("read failed");
        return (int)n;
    }

    public static void WriteAll(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* start = buffer)
        {
            byte* p = start;
            nint left = buffer.Length;
            while (left > 0)
            {
                nint n = write(fd, p, left);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EINTR) continue;
                    throw Error("write failed");
                }
                p += n;
                left -= n;
            }
        }
    }

    /// <summary>lseek(2) with SEEK_CUR: moves the file position forward, leaving a hole.</summary>
    public static void SeekForward(int fd, long count)
    {
        if (lseek(fd, count, 1) < 0) throw Error("seek failed");
    }

    public static void Truncate(int fd, long length)
    {
        if (ftruncate(fd, length) != 0) throw Error("cannot set the size of a file");
    }

    public static void Close(int fd) => close(fd);

    /// <summary>One syncfs for a whole filesystem instead of an fsync per file.</summary>
    public static void SyncFilesystem(int fd)
    {
        if (syncfs(fd) != 0) throw Error("cannot flush to disk");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct FileLock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length; // 0: the whole file
        public int Pid;
    }

    /// <summary>Takes an OFD read lock on the whole file without waiting; 0 or the errno.</summary>
    public static int TryReadLock(int fd)
    {
        const int OfdSetLock = 37; // F_OFD_SETLK
        var fl = new FileLock { Type = 0 /* F_RDLCK */ };
        return fcntl(fd, OfdSetLock, &fl) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}

/// <summary>The version probe of the native zstd library that ZstdNet bundles (see Oci/Zstd.cs).</summary>
public static partial class NativeZstd
{
    // Resolves to the same library ZstdNet loads: the app's native assets name it "libzstd".
    [LibraryImport("libzstd", EntryPoint = "ZSTD_versionNumber")]
    public static partial uint VersionNumber();

    // The streaming API with a referenced prefix (patch-from deltas, Oci/ZstdPatch): ZstdNet
    // does not wrap ZSTD_CCtx_refPrefix, so these go to the same bundled library directly.
    // Buffers are ZSTD_inBuffer/ZSTD_outBuffer: { void* ptr; size_t size; size_t pos; }.

    [StructLayout(LayoutKind.Sequential)]
    public struct Buffer
    {
        public nint Ptr;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport("libzstd", EntryPoint = "ZSTD_createCCtx")]
    public static partial nint CreateCCtx();

    [LibraryImport("libzstd", EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(nint cctx);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_CCtx_setParameter")]
    public static partial nuint CCtxSetParameter(nint cctx, int parameter, int value);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_CCtx_setPledgedSrcSize")]
    public static partial nuint CCtxSetPledgedSrcSize(nint cctx, ulong size);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_CCtx_refPrefix")]
    public static partial nuint CCtxRefPrefix(nint cctx, nint prefix, nuint size);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_compressStream2")]
    public static unsafe partial nuint CompressStream2(nint cctx, Buffer* output, Buffer* input, int endOp);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_createDCtx")]
    public static partial nint CreateDCtx();

    [LibraryImport("libzstd", EntryPoint = "ZSTD_freeDCtx")]
    public static partial nuint FreeDCtx(nint dctx);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_DCtx_setParameter")]
    public static partial nuint DCtxSetParameter(nint dctx, int parameter, int value);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_DCtx_refPrefix")]
    public static partial nuint DCtxRefPrefix(nint dctx, nint prefix, nuint size);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_decompressStream")]
    public static unsafe partial nuint DecompressStream(nint dctx, Buffer* output, Buffer* input);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport("libzstd", EntryPoint = "ZSTD_getErrorName")]
    public static partial nint GetErrorName(nuint code);
}
