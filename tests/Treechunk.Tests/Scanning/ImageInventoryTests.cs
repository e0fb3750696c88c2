using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>The package databases are read with the layer rules: upper layers win, whiteouts and opaque directories hide.</summary>
public class ImageInventoryTests
{
    private const string OsRelease = "add(t, 'usr/lib/os-release', b'ID=debian\\nVERSION_ID=\"12\"\\nVERSION_CODENAME=bookworm\\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\\n')\n" +
                                     "add(t, 'etc/os-release', type=tarfile.SYMTYPE, linkname='../usr/lib/os-release')";

    private static string Status(params (string Name, string Version, string? Source)[] packages) =>
        string.Join("", packages.Select(p => $"Package: {p.Name}\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: {p.Version}\\n" +
                                             (p.Source != null ? $"Source: {p.Source}\\n" : "") + "\\n"));

    private static JsonNode Scan(string layout) => JsonNode.Parse(TreechunkCli.Check("oci", "scan", $"oci:{layout}:latest", "--json"))!;

    private static List<string> Names(JsonNode report) => report["packages"]!.AsArray().Select(p => $"{p!["name"]} {p["version"]} {p["source"]} {p["source_version"]}").ToList();

    [Fact]
    public void The_uppermost_status_file_wins_and_source_versions_come_from_the_source_field()
    {
        using var tmp = new TempDir("inv-upper");
        CraftedImage.Write(tmp["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/lib/dpkg/status', b'{Status(("old", "1.0-1", null))}')"),
            CraftedImage.PythonTar($"add(t, 'var/lib/dpkg/status', b'{Status(("libfoo1", "2.0-1+b1", "foo (2.0-1)"), ("bar", "1:3.0-2", null))}')"));
        var report = Scan(tmp["img"]);
        Assert.Equal(["bar 1:3.0-2 bar 1:3.0-2", "libfoo1 2.0-1+b1 foo 2.0-1"], Names(report));
        Assert.Equal("debian", (string?)report["distro"]!["id"]);
        Assert.Equal("pkg:deb/debian/libfoo1@2.0-1%2Bb1?arch=amd64&distro=debian-12".Replace("%2B", "+"), (string?)report["packages"]![1]!["purl"]);
    }

    [Fact]
    public void A_whiteout_of_the_status_file_removes_the_database()
    {
        using var tmp = new TempDir("inv-whiteout");
        CraftedImage.Write(tmp["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/lib/dpkg/status', b'{Status(("old", "1.0-1", null))}')"),
            CraftedImage.PythonTar("add(t, 'var/lib/dpkg/.wh.status', b'')"));
        var run = TreechunkCli.Run("oci", "scan", $"oci:{tmp["img"]}:latest", "--json");
        Assert.Empty(JsonNode.Parse(run.Stdout)!["packages"]!.AsArray());
        Assert.Contains("no package database", run.Stderr);
    }

    [Fact]
    public void An_opaque_directory_hides_the_lower_status_and_its_own_replaces_it()
    {
        using var tmp = new TempDir("inv-opaque");
        CraftedImage.Write(tmp["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/lib/dpkg/status', b'{Status(("old", "1.0-1", null))}')"),
            CraftedImage.PythonTar("add(t, 'var/lib/.wh..wh..opq', b'')\nadd(t, 'var/lib/dpkg', type=tarfile.DIRTYPE)"),
            CraftedImage.PythonTar($"add(t, 'etc/hostname', b'x')"));
        Assert.Empty(Scan(tmp["img"])["packages"]!.AsArray());

        using var tmp2 = new TempDir("inv-opaque2");
        CraftedImage.Write(tmp2["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/lib/dpkg/status', b'{Status(("old", "1.0-1", null))}')"),
            CraftedImage.PythonTar($"add(t, 'var/lib/dpkg/.wh..wh..opq', b'')\nadd(t, 'var/lib/dpkg/status', b'{Status(("new", "2.0-1", null))}')"));
        Assert.Equal(["new 2.0-1 new 2.0-1"], Names(Scan(tmp2["img"])));
    }

    [Fact]
    public void Distroless_status_d_stanzas_are_read_and_a_hardlinked_status_is_followed()
    {
        using var tmp = new TempDir("inv-statusd");
        CraftedImage.Write(tmp["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/lib/dpkg/status.d/base', b'{Status(("base-files", "12.4", null))}')\n" +
                                   $"add(t, 'var/lib/dpkg/status.d/tzdata', b'{Status(("tzdata", "2024a-0+deb12u1", null))}')\n" +
                                   "add(t, 'var/lib/dpkg/status.d/tzdata.md5sums', b'0  /x')"));
        Assert.Equal(["base-files 12.4 base-files 12.4", "tzdata 2024a-0+deb12u1 tzdata 2024a-0+deb12u1"], Names(Scan(tmp["img"])));

        using var tmp2 = new TempDir("inv-hardlink");
        CraftedImage.Write(tmp2["img"],
            CraftedImage.PythonTar(OsRelease + $"\nadd(t, 'var/backups/status', b'{Status(("linked", "1.0", null))}')\n" +
                                   "add(t, 'var/lib/dpkg/status', type=tarfile.LNKTYPE, linkname='var/backups/status')"));
        Assert.Equal(["linked 1.0 linked 1.0"], Names(Scan(tmp2["img"])));
    }
}
