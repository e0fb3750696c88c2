using System.Text.Json.Nodes;
using Treechunk.Compose;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>
/// Linux names are bytes: a tree whose file, directory, symlink-target and hardlink names are not
/// UTF-8 (Latin-1 names, stray bytes, one too long for the ustar fields) builds, and comes back
/// byte for byte through umoci and `oci extract`. The trees are made and compared by Python on
/// bytes, never through our own name codec.
/// </summary>
public sealed class NonUtf8TreeFixture : IDisposable
{
    public TempDir Dir { get; } = new("nonutf8");
    public string Rootfs => Dir["rootfs"];
    public string Layout => Dir["image"];
    public string Digest { get; }

    public NonUtf8TreeFixture()
    {
        Proc.Check("python3", "-c", $$"""
            import os
            r = b'{{Rootfs}}'
            def mk(rel, data=b'x', mode=0o644):
                p = os.path.join(r, rel); os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, 'wb') as f: f.write(data)
                os.chmod(p, mode)
            mk(b'etc/bad\xffname', b'latin\n')
            mk(b'usr/share/caf\xe9/menu', b'menu\n')                  # a Latin-1 directory name
            mk(b'usr/share/ok/\xc3\xa9t\xc3\xa9', b'valid utf-8\n')   # UTF-8 that is fine
            mk(b'usr/lib/' + b'long-' * 22 + b'\x80\x81.bin', b'long name\n')  # > 100 bytes: PAX path
            os.symlink(b'../etc/bad\xffname', os.path.join(r, b'usr/lnk\xfe'))
            os.symlink(b'target-\xfa', os.path.join(r, b'etc/dangling'))
            os.link(os.path.join(r, b'etc/bad\xffname'), os.path.join(r, b'usr/share/caf\xe9/hard\xa0link'))
            os.makedirs(os.path.join(r, b'var/\xf0\x28\x8c\x28'))          # invalid 4-byte sequence
            """);
        Digest = Build(Layout);
    }

    public string Build(string layout) =>
        (string)JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", Rootfs, "--output", $"oci:{layout}:v1", "--chunk-size", "8K", "--json"))!["manifest_digest"]!;

    /// <summary>Every entry of a tree by Python on bytes: name (hex), type and mode, link target (hex), content (hex), link count.</summary>
    public static string Walk(string root) => Proc.Check("python3", "-c", $$"""
        import os, stat
        r = b'{{root}}'
        out = []
        for d, ds, fs in os.walk(r):
            for n in ds + fs:
                p = os.path.join(d, n); st = os.lstat(p); rel = os.path.relpath(p, r)
                link = os.readlink(p).hex() if stat.S_ISLNK(st.st_mode) else ''
                data = open(p, 'rb').read().hex() if stat.S_ISREG(st.st_mode) else ''
                out.append(f'{rel.hex()} {oct(st.st_mode)} {link} {data} {st.st_nlink if stat.S_ISREG(st.st_mode) else ""}')
        print('\n'.join(sorted(out)))
        """);

    public void Dispose() => Dir.Dispose();
}

public class NonUtf8NamesTests(NonUtf8TreeFixture fx) : IClassFixture<NonUtf8TreeFixture>
{
    [Fact]
    public void Umoci_and_extract_give_back_the_same_bytes()
    {
        var expected = NonUtf8TreeFixture.Walk(fx.Rootfs);
        Assert.Contains("6574632f626164ff6e616d65", expected); // etc/bad\xffname is really there
        using var tmp = new TempDir("nonutf8-out");
        TreechunkCli.Check("oci", "extract", fx.Layout, tmp["out"]);
        Assert.Equal(expected, NonUtf8TreeFixture.Walk(tmp["out"]));
        Proc.Check(Tools.Require("umoci"), "unpack", "--image", $"{fx.Layout}:v1", tmp["bundle"]);
        Assert.Equal(expected, NonUtf8TreeFixture.Walk(tmp["bundle/rootfs"]));
    }

    [Fact]
    public void Two_builds_give_the_same_digest_and_a_rechunk_keeps_the_names()
    {
        using var tmp = new TempDir("nonutf8-again");
        Assert.Equal(fx.Digest, fx.Build(tmp["again"]));
        TreechunkCli.Check("compose", "build-chunked-oci", "--from", $"oci:{fx.Layout}:v1", "--output", $"oci:{tmp["re"]}:r", "--max-layers", "2");
        TreechunkCli.Check("oci", "extract", $"oci:{tmp["re"]}:r", tmp["out"]);
        Assert.Equal(NonUtf8TreeFixture.Walk(fx.Rootfs), NonUtf8TreeFixture.Walk(tmp["out"]));
    }

    [Fact]
    public void Layers_hold_the_names_as_gnu_tar_and_go_read_them()
    {
        // Python's tarfile with surrogateescape shows the bytes as stored; a name too long for
        // ustar is a PAX path marked hdrcharset=BINARY.
        using var tmp = new TempDir("nonutf8-tar");
        Proc.Check(Tools.Require("skopeo"), "copy", "--dest-decompress", $"oci:{fx.Layout}:v1", $"dir:{tmp["dir"]}");
        var listing = Proc.Check("python3", "-c", $$"""
            import json, os, tarfile
            d = '{{tmp["dir"]}}'
            m = json.load(open(os.path.join(d, 'manifest.json')))
            for l in m['layers']:
                with tarfile.open(os.path.join(d, l['digest'][7:]), encoding='utf-8', errors='surrogateescape') as t:
                    for i in t.getmembers():
                        name = i.name.encode('utf-8', 'surrogateescape')
                        link = i.linkname.encode('utf-8', 'surrogateescape')
                        print(name.hex(), link.hex(), i.pax_headers.get('hdrcharset', '-'))
            """);
        var rows = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToList();
        Assert.Contains(rows, r => r[0] == "6574632f626164ff6e616d65");                             // etc/bad\xffname
        Assert.Contains(rows, r => r[0] == Convert.ToHexStringLower("usr/lnk"u8) + "fe" && r[1] == Convert.ToHexStringLower("../etc/bad"u8) + "ff" + Convert.ToHexStringLower("name"u8));
        var longName = rows.Single(r => r[0].EndsWith("8081" + Convert.ToHexStringLower(".bin"u8)));
        Assert.Equal("BINARY", longName[2]);
        // GNU tar unpacks the layers, in order, into the same bytes.
        Directory.CreateDirectory(tmp["gnu"]);
        var manifest = JsonNode.Parse(File.ReadAllText(tmp["dir/manifest.json"]))!;
        foreach (var l in manifest["layers"]!.AsArray())
            Proc.Check("tar", "-xpf", Path.Join(tmp["dir"], ((string)l!["digest"]!)[7..]), "-C", tmp["gnu"]);
        Assert.Equal(NonUtf8TreeFixture.Walk(fx.Rootfs), NonUtf8TreeFixture.Walk(tmp["gnu"]));
    }

    [Fact]
    public void Ostree_refuses_them_with_one_line_naming_the_escaped_path_and_writes_nothing()
    {
        using var tmp = new TempDir("nonutf8-ostree");
        TreechunkCli.Check("ostree", "init", "--repo", tmp["repo"], "--mode", "archive");
        var line = TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["repo"], "--branch", "x", fx.Rootfs);
        // The first bad name in path order, its bytes escaped.
        Assert.Equal("treechunk: error: etc/bad\\xffname: the name is not valid UTF-8, and OSTree can only hold UTF-8 names", line);
        Assert.Empty(Directory.EnumerateFiles(tmp["repo/objects"], "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(tmp["repo/refs/heads"], "*", SearchOption.AllDirectories));

        // The other ways into OSTree refuse the same way: importing such an image...
        var import = TreechunkCli.Fails(2, "oci", "import-ostree", fx.Layout, "--repo", tmp["repo"], "--ref", "y");
        Assert.Equal(line, import);
        Assert.Empty(Directory.EnumerateFiles(tmp["repo/objects"], "*", SearchOption.AllDirectories));
    }

    private sealed class BadNameBackend : IPackageBackend
    {
        public string Name => "test";

        public BackendResult Install(Treefile treefile, string rootfs, BackendOptions options)
        {
            Proc.Check("python3", "-c", $"import os; os.makedirs(b'{rootfs}/etc', exist_ok=True); open(b'{rootfs}/etc/latin-\\xe9', 'wb').write(b'x')");
            return new BackendResult(1, 0, 1);
        }
    }

    [Fact]
    public void A_compose_refuses_them_before_committing()
    {
        using var tmp = new TempDir("nonutf8-compose");
        Directory.CreateDirectory(tmp["tf"]);
        File.WriteAllText(tmp["tf/debian.sources"], "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n");
        File.WriteAllText(tmp["tf/treefile.yaml"], "ref: test/bad\nrepos: [debian]\npackages: [app]\n");
        var e = Assert.Throws<TreechunkException>(() => ComposeRunner.ComposeTree(Treefile.Load(tmp["tf/treefile.yaml"]), new BadNameBackend(),
            new ComposeOptions { RepoPath = tmp["repo"], SourceDateEpoch = 0 }));
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
        Assert.StartsWith("etc/latin-\\xe9: the name is not valid UTF-8", e.Message);
        Assert.Empty(Directory.EnumerateFiles(tmp["repo/objects"], "*", SearchOption.AllDirectories));
    }
}

public class SparseExtractTests
{
    [Fact]
    public void A_gigabyte_of_zeros_extracts_as_a_hole()
    {
        using var tmp = new TempDir("sparse");
        Directory.CreateDirectory(tmp["rootfs/var/lib"]);
        Proc.Check("truncate", "-s", "1G", tmp["rootfs/var/lib/disk.img"]);
        File.WriteAllText(tmp["rootfs/var/lib/small"], "data");
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["image"]}", "--compression", "zstd");
        TreechunkCli.Check("oci", "extract", tmp["image"], tmp["out"]);
        var stat = Proc.Check("stat", "-c", "%s %b %B", tmp["out/var/lib/disk.img"]).Split(' ').Select(long.Parse).ToArray();
        Assert.Equal(1L << 30, stat[0]);
        Assert.True(stat[1] * stat[2] < 1 << 20, $"1 GB of zeros takes {stat[1] * stat[2]} bytes of disk");
        // The content is still right: all zeros, the full length.
        Assert.Equal(0, Proc.Run("cmp", ["-n", "1073741824", tmp["out/var/lib/disk.img"], "/dev/zero"]).ExitCode);
        Assert.Equal("data", File.ReadAllText(tmp["out/var/lib/small"]));
    }
}
