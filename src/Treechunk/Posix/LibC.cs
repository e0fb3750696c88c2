using System.Runtime.InteropServices;
using System.Text;

namespace Treechunk.Posix;

/// <summary>
/// The few POSIX calls .NET does not expose: lstat with owner and device numbers (statx, whose
/// struct layout is the same on every Linux architecture), extended attributes, lchown, mknod.
/// </summary>
public static unsafe class LibC
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    public const int ENODATA = 61;
    public const int ENOTSUP = 95;
    public const int ERANGE = 34;
    public const int ENOENT = 2;
    public const int ENOTDIR = 20;
    public const int ELOOP = 40;

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

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern int statx(int dirfd, byte[] path, int flags, uint mask, Statx* buf);

    [DllImport("libc", SetLastError = true)]
    private static extern nint llistxattr(byte[] path, byte* list, nint size);

    [DllImport("libc", SetLastError = true)]
    private static extern nint lgetxattr(byte[] path, byte[] name, byte* value, nint size);

    [DllImport("libc", SetLastError = true)]
    private static extern int lsetxattr(byte[] path, byte[] name, byte* value, nint size, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown(byte[] path, int owner, int group);

    [DllImport("libc", SetLastError = true)]
    private static extern int chmod(byte[] path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int mknod(byte[] path, uint mode, ulong dev);

    [DllImport("libc", SetLastError = true)]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern nint opendir(byte[] path);

    [DllImport("libc", SetLastError = true)]
    private static extern byte* readdir(nint dir);

    [DllImport("libc", SetLastError = true)]
    private static extern int closedir(nint dir);

    // struct dirent on 64-bit Linux (glibc and musl): d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name.
    private const int DirentNameOffset = 19;

    /// <summary>
    /// The names in a directory, without "." and "..", in readdir order. One getdents per
    /// buffer and nothing per entry (.NET's enumerator also stats every symlink).
    /// </summary>
    public static List<string> ListDirectory(string path)
    {
        var dir = opendir(Z(path));
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
                names.Add(Encoding.UTF8.GetString(name));
            }
        }
        finally
        {
            closedir(dir);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint readlink(byte[] path, byte* buf, nint size);

    /// <summary>readlink(2): a symlink's target, as UTF-8 text.</summary>
    public static string ReadLink(string path)
    {
        var z = Z(path);
        for (int size = 256; ; size *= 4)
        {
            var buf = new byte[size];
            nint n;
            fixed (byte* b = buf) n = readlink(z, b, size);
            if (n < 0) throw Error("cannot read link", path);
            if (n < size) return Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "link")]
    private static extern int link(byte[] oldpath, byte[] newpath);

    /// <summary>link(2); false when the filesystem or the two locations do not allow it (the caller copies instead).</summary>
    public static bool TryLink(string existing, string newPath) => link(Z(existing), Z(newPath)) == 0;

    public static bool IsRoot => geteuid() == 0;

    internal static byte[] Z(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    internal static IOException Error(string what, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

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
    public static FileStatus LStat(string path)
    {
        Statx st;
        if (statx(AtFdCwd, Z(path), AtSymlinkNoFollow, StatxBasicStats, &st) != 0)
            throw Error("cannot stat", path);
        return new FileStatus(st.Mode, st.Uid, st.Gid, st.Nlink, st.Ino,
            ((ulong)st.DevMajor << 32) | st.DevMinor, (long)st.Size, st.MtimeSec, st.RdevMajor, st.RdevMinor);
    }

    /// <summary>The size of an open file.</summary>
    public static long FileSize(int fd)
    {
        const int AtEmptyPath = 0x1000;
        Statx st;
        if (statx(fd, EmptyPath, AtEmptyPath, StatxBasicStats, &st) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot stat an open file: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        return (long)st.Size;
    }

    private static readonly byte[] EmptyPath = [0];

    /// <summary>lstat that returns null when the path does not exist.</summary>
    public static FileStatus? TryLStat(string path)
    {
        Statx st;
        if (statx(AtFdCwd, Z(path), AtSymlinkNoFollow, StatxBasicStats, &st) != 0)
        {
            if (Marshal.GetLastPInvokeError() == ENOENT || Marshal.GetLastPInvokeError() == 20 /* ENOTDIR */) return null;
            throw Error("cannot stat", path);
        }
        return new FileStatus(st.Mode, st.Uid, st.Gid, st.Nlink, st.Ino,
            ((ulong)st.DevMajor << 32) | st.DevMinor, (long)st.Size, st.MtimeSec, st.RdevMajor, st.RdevMinor);
    }

    /// <summary>All extended attributes of a path (not following symlinks), sorted by name.</summary>
    public static List<KeyValuePair<string, byte[]>> ListXattrs(string path)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        var p = Z(path);
        nint size = llistxattr(p, null, 0);
        if (size < 0)
        {
            if (Marshal.GetLastPInvokeError() == ENOTSUP) return result;
            throw Error("cannot list xattrs of", path);
        }
        if (size == 0) return result;
        var names = new byte[size];
        fixed (byte* n = names)
        {
            size = llistxattr(p, n, names.Length);
            if (size < 0) throw Error("cannot list xattrs of", path);
        }
        int start = 0;
        for (int i = 0; i < size; i++)
        {
            if (names[i] != 0) continue;
            var name = Encoding.UTF8.GetString(names, start, i - start);
            start = i + 1;
            var value = GetXattr(path, name);
            if (value != null) result.Add(new(name, value));
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result;
    }

    public static byte[]? GetXattr(string path, string name)
    {
        var p = Z(path);
        var n = Z(name);
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

    public static void SetXattr(string path, string name, byte[] value)
    {
        fixed (byte* v = value)
            if (lsetxattr(Z(path), Z(name), v, value.Length, 0) != 0)
                throw Error($"cannot set xattr {name} on", path);
    }

    public static void LChown(string path, int uid, int gid)
    {
        if (lchown(Z(path), uid, gid) != 0) throw Error("cannot change owner of", path);
    }

    /// <summary>chmod with all 12 permission bits (setuid/setgid/sticky included); follows symlinks, so never call it on one.</summary>
    public static void Chmod(string path, int mode)
    {
        if (chmod(Z(path), (uint)mode) != 0) throw Error("cannot change mode of", path);
    }

    public static void MkNod(string path, EntryKind kind, int mode, int major, int minor)
    {
        uint type = kind switch { EntryKind.Char => 0x2000u, EntryKind.Block => 0x6000u, _ => 0x1000u };
        // glibc's makedev encoding.
        ulong dev = ((ulong)(uint)minor & 0xff) | (((ulong)(uint)major & 0xfff) << 8)
                    | (((ulong)(uint)minor & ~0xffUL) << 12) | (((ulong)(uint)major & ~0xfffUL) << 32);
        if (mknod(Z(path), type | (uint)(mode & 0xFFF), dev) != 0) throw Error("cannot create node", path);
    }

    public enum EntryKind { Char, Block, Fifo }
}
