using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>oci extract and --from refuse layers that would write outside the target directory.</summary>
public class ExtractSafetyTests
{
    [Theory]
    [InlineData("add(t, 'ok.txt')\nadd(t, '../escape.txt')", "escape")]
    [InlineData("add(t, '/etc/absolute-escape.txt')", "absolute-escape")]
    [InlineData("add(t, 'evil', type=tarfile.SYMTYPE, linkname='/tmp')\nadd(t, 'evil/pwned.txt')", "evil")]
    [InlineData("add(t, 'up', type=tarfile.SYMTYPE, linkname='../..')\nadd(t, 'up/pwned.txt')", "up")]
    [InlineData("add(t, 'hl', type=tarfile.LNKTYPE, linkname='../../etc/passwd')", "hl")]
    public void Escaping_entries_are_refused(string members, string named)
    {
        using var tmp = new TempDir("escape");
        CraftedImage.Write(tmp["image"], CraftedImage.PythonTar(members));
        var line = TreechunkCli.Fails(2, "oci", "extract", tmp["image"], tmp["out"]);
        Assert.Contains(named, line);
        Assert.False(File.Exists(Path.Join(Path.GetTempPath(), "pwned.txt")));
        Assert.False(File.Exists(Path.Join(tmp.Path, "escape.txt")));
        Assert.False(File.Exists("/etc/absolute-escape.txt")); // the real target of the absolute entry
        Assert.False(File.Exists("/tmp/pwned.txt"));           // through the symlink to /tmp
        // Rechunking the same image refuses it too.
        Assert.Contains(named, TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--from", tmp["image"], "--output", $"oci:{tmp["re"]}"));
        Assert.False(File.Exists(Path.Join(tmp["re"], "index.json")));
    }

    [Fact]
    public void Absolute_symlinks_inside_the_tree_are_kept_as_links()
    {
        using var tmp = new TempDir("abs");
        CraftedImage.Write(tmp["image"], CraftedImage.PythonTar(
            "add(t, 'etc', type=tarfile.DIRTYPE, mode=0o755)\nadd(t, 'etc/alt', type=tarfile.SYMTYPE, linkname='/usr/bin/true')"));
        TreechunkCli.Check("oci", "extract", tmp["image"], tmp["out"]);
        Assert.Equal("/usr/bin/true", new FileInfo(tmp["out/etc/alt"]).LinkTarget);
    }
}
