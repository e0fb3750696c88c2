using System.Text;
using Treechunk.Posix;

namespace Treechunk.Tests.Support;

/// <summary>
/// The smallest tree a container engine can run a command in: the host's <c>cat</c> with the
/// shared libraries and loader it needs (each at the path the binary asks for), and an
/// <c>/etc/os-release</c> of its own, about 2 MB in all. Engines with vfs storage copy the whole
/// tree for every layer, so the Debian fixture (190 MB in dozens of layers) would make each
/// import cost gigabytes; this one costs a few. <c>user.component</c> xattrs split it into
/// several layers (libc, cat, os-release), so a load really stacks layers.
/// </summary>
public static class RunnableTree
{
    /// <summary>The os-release the tree holds (a non-ASCII byte included: the bytes must come back exactly).</summary>
    public static readonly byte[] OsRelease = Encoding.UTF8.GetBytes(
        "PRETTY_NAME=\"treechunk runtime test – chunked\"\nNAME=\"treechunk\"\nID=treechunk-test\nVERSION_ID=1\n");

    public const string Cat = "usr/bin/cat";

    public static void Create(string root)
    {
        Directory.CreateDirectory(root);
        CopyFromHost(root, "/" + Cat, "coreutils");
        foreach (var library in SharedLibraries("/" + Cat)) CopyFromHost(root, library, "libc6");
        var osRelease = Path.Join(root, "etc/os-release");
        Directory.CreateDirectory(Path.GetDirectoryName(osRelease)!);
        File.WriteAllBytes(osRelease, OsRelease);
        LibC.SetXattr(osRelease, "user.component", "base-files"u8.ToArray());
        Directory.CreateDirectory(Path.Join(root, "tmp"));
    }

    /// <summary>The libraries and the loader ldd says the binary loads, by the paths the binary names.</summary>
    private static IEnumerable<string> SharedLibraries(string binary)
    {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
        // linux-vdso has no file.
        foreach (var line in Proc.Check("ldd", binary).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var path = line.Contains("=>") ? line[(line.IndexOf("=>", StringComparison.Ordinal) + 2)..].Trim() : line;
            path = path.Split(' ')[0];
            if (path.StartsWith('/')) yield return path;
        }
    }

    /// <summary>Copies a host file (symlinks followed) to the same path in the tree, a real file there.</summary>
    private static void CopyFromHost(string root, string hostPath, string component)
    {
        var target = Path.Join(root, hostPath.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        Proc.Check("cp", "-L", "--preserve=mode", hostPath, target);
        LibC.SetXattr(target, "user.component", Encoding.UTF8.GetBytes(component));
    }
}
