using System.Text;
using Treechunk.Posix;

namespace Treechunk.Tests.Support;

/// <summary>A small rootfs holding every entry type and metadata case the image must keep.</summary>
public static class SyntheticTree
{
    /// <summary>security.capability for cap_net_bind_service+ep: binary, not valid UTF-8.</summary>
    public static readonly byte[] Capability = [0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    public static string LongPath { get; } = string.Join('/', Enumerable.Range(0, 12).Select(i => $"deep-directory-level-{i:00}")) + "/" + new string('f', 120) + ".txt";

    public static void Create(string root)
    {
        Directory.CreateDirectory(root);
        void Write(string rel, string text, int mode = 0x1A4)
        {
            var full = Path.Join(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            LibC.Chmod(full, mode);
        }
        Write("usr/bin/tool", "#!/bin/sh\necho tool\n", 0x1ED);
        Write("usr/bin/suid-tool", "suid", 0xDED);           // 04755
        Write("usr/bin/sgid-tool", "sgid", 0x5ED);           // 02755
        Write("usr/lib/libfoo.so.1", new string('x', 100_000));
        Write("etc/app.conf", "key=value\n", 0x180);          // 0600
        Write("home/user/notes.txt", "mine\n");
        LibC.LChown(Path.Join(root, "home/user/notes.txt"), 1000, 1000);
        LibC.LChown(Path.Join(root, "home/user"), 1000, 100);
        Directory.CreateDirectory(Path.Join(root, "tmp"));
        LibC.Chmod(Path.Join(root, "tmp"), 0x3FF);            // 01777
        Directory.CreateDirectory(Path.Join(root, "var/empty"));
        LibC.Chmod(Path.Join(root, "var/empty"), 0x1C0);      // 0700
        File.CreateSymbolicLink(Path.Join(root, "usr/bin/tool-link"), "tool");
        File.CreateSymbolicLink(Path.Join(root, "etc/abs-link"), "/usr/lib/libfoo.so.1");
        File.CreateSymbolicLink(Path.Join(root, "etc/dangling"), "../nowhere");
        // One inode, three paths.
        Write("usr/share/data/a", "linked content\n");
        Proc.Check("ln", Path.Join(root, "usr/share/data/a"), Path.Join(root, "usr/share/data/b"));
        Proc.Check("ln", Path.Join(root, "usr/share/data/a"), Path.Join(root, "usr/bin/c-link"));
        Directory.CreateDirectory(Path.Join(root, "dev"));
        LibC.MkNod(Path.Join(root, "dev/null"), LibC.EntryKind.Char, 0x1B6, 1, 3);
        LibC.MkNod(Path.Join(root, "dev/loop0"), LibC.EntryKind.Block, 0x1B0, 7, 0);
        LibC.MkNod(Path.Join(root, "dev/initctl"), LibC.EntryKind.Fifo, 0x180, 0, 0);
        LibC.SetXattr(Path.Join(root, "usr/bin/tool"), "user.note", Encoding.UTF8.GetBytes("hello xattr"));
        LibC.SetXattr(Path.Join(root, "usr/bin/tool"), "security.capability", Capability);
        Write("opt/app/big.bin", "component by xattr");
        LibC.SetXattr(Path.Join(root, "opt/app/big.bin"), "user.component", Encoding.UTF8.GetBytes("my-app"));
        Write(LongPath, "deep\n");
        Write("usr/share/unicode/naïve-файл.txt", "unicode name\n");
        Write("usr/share/empty-file", "");
    }
}
