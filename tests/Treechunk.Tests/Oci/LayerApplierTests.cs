using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Transports;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using Xunit;

namespace Treechunk.Tests.Oci;

/// <summary>
/// A three-layer image made by umoci (two repacks, so umoci writes the whiteouts) plus a raw
/// layer with opaque markers and a cross-layer hardlink, and umoci's own unpack of it as the
/// reference result. Built once for the class.
/// </summary>
public sealed class UmociImageFixture : IDisposable
{
    private readonly TempDir _tmp = new("umoci");
    public string Layout => _tmp["img"];
    public string Reference => _tmp["ref/rootfs"];

    public static readonly byte[] Capability =
        [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    public UmociImageFixture()
    {
        Tools.Require("umoci");
        Tools.Require("python3");
        var t = _tmp.Path;
        Proc.Sh($"""
            cd '{t}'
            umoci init --layout img
            umoci new --image img:t
            umoci unpack --image img:t b1
            cd b1/rootfs
            mkdir -p etc bin usr/bin data gone/sub opq keep dev dir2
            echo 'hello v1' > etc/hello
            echo tool > bin/tool && chmod 0750 bin/tool && chown 1000:1001 bin/tool
            echo su > bin/su && chmod 04755 bin/su
            echo ping > usr/bin/ping
            ln -s etc/hello link
            ln -s /etc/hello abs
            echo ab > data/a && ln data/a data/b
            echo cde > data/c && ln data/c data/d && ln data/c data/e
            echo f > gone/f && echo g > gone/sub/g
            echo 1 > opq/old1 && echo 2 > opq/old2
            echo k > keep/old
            mknod dev/null c 1 3 && chmod 0666 dev/null
            mkfifo dev/fifo
            echo thing > thing
            echo x > dir2/x
            python3 -c "import os; os.setxattr('usr/bin/ping', 'security.capability', bytes.fromhex('{Convert.ToHexStringLower(Capability)}')); os.setxattr('etc/hello', 'user.test', b'val')"
            cd '{t}'
            umoci repack --image img:t b1
            umoci unpack --image img:t b2
            cd b2/rootfs
            echo 'hello v2' > etc/hello
            chmod 0700 bin/tool && chown 2000:2000 bin/tool
            rm -rf gone
            rm data/c
            rm thing && mkdir thing && echo inner > thing/inner
            rm -rf dir2 && echo nowfile > dir2
            mkdir -p new && echo n > new/file
            cd '{t}'
            umoci repack --image img:t b2
            """);
        LayerTars.Build(_tmp["layer3.tar"],
            LayerTars.Dir("opq"),
            LayerTars.File("opq/.wh..wh..opq", ""),
            LayerTars.File("opq/new3", "new3"),
            LayerTars.Dir("keep"),
            LayerTars.File("keep/.wh..wh..opq", ""),
            LayerTars.File("keep/mine", "mine"),
            LayerTars.Hardlink("etc/hello-link", "etc/hello"),
            LayerTars.File(".wh.link", ""));
        Proc.Sh($"""
            cd '{t}'
            umoci raw add-layer --image img:t layer3.tar
            umoci unpack --image img:t ref
            """);
    }

    public void Dispose() => _tmp.Dispose();
}

/// <summary>Builds layer tars with Python's tarfile, which (unlike GNU tar) writes whatever names it is given.</summary>
public static class LayerTars
{
    private const string Script = """
        import sys, json, tarfile, io
        spec = json.loads(sys.argv[2])
        with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
            for e in spec:
                ti = tarfile.TarInfo(e['name'])
                kind = e['type']
                ti.mode = int(e['mode'], 8)
                ti.uid = e['uid']; ti.gid = e['gid']; ti.mtime = e['mtime']
                if e['xattrs']:
                    ti.pax_headers = {'SCHILY.xattr.' + k: bytes.fromhex(v).decode('utf-8', 'surrogateescape') for k, v in e['xattrs'].items()}
                data = None
                if kind == 'file':
                    data = bytes.fromhex(e['data']); ti.size = len(data)
                elif kind == 'dir': ti.type = tarfile.DIRTYPE
                elif kind == 'symlink': ti.type = tarfile.SYMTYPE; ti.linkname = e['link']
                elif kind == 'hardlink': ti.type = tarfile.LNKTYPE; ti.linkname = e['link']
                elif kind == 'fifo': ti.type = tarfile.FIFOTYPE
                elif kind == 'char': ti.type = tarfile.CHRTYPE; ti.devmajor, ti.devminor = e['dev']
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        """;

    public sealed record Spec(string name, string type, string mode = "644", int uid = 0, int gid = 0, long mtime = 1000,
        string data = "", string? link = null, int[]? dev = null, Dictionary<string, string>? xattrs = null);

    public static Spec File(string name, string text, string mode = "644", int uid = 0, int gid = 0) =>
        new(name, "file", mode, uid, gid, data: Convert.ToHexStringLower(Encoding.UTF8.GetBytes(text)));
    public static Spec Dir(string name, string mode = "755") => new(name, "dir", mode);
    public static Spec Symlink(string name, string target) => new(name, "symlink", "777", link: target);
    public static Spec Hardlink(string name, string target) => new(name, "hardlink", link: target);
    public static Spec Fifo(string name) => new(name, "fifo", "600");
    public static Spec Char(string name, int major, int minor) => new(name, "char", "666", dev: [major, minor]);

    public static void Build(string path, params Spec[] entries)
    {
        Tools.Require("python3");
        Proc.Check("python3", "-c", Script, path, JsonSerializer.Serialize(entries));
    }

    public static byte[] Bytes(params Spec[] entries)
    {
        var path = Path.Join(Path.GetTempPath(), "treechunk-layer-" + Guid.NewGuid().ToString("N") + ".tar");
        try
        {
            Build(path, entries);
            return System.IO.File.ReadAllBytes(path);
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}

public sealed class LayerApplierTests(UmociImageFixture umoci) : IClassFixture<UmociImageFixture>
{
    /// <summary>One line per entry with everything a tree promises, so trees from different sources compare as text.</summary>
    private static List<string> Describe(ITree tree) => tree.Entries.Select(e =>
    {
        var sb = new StringBuilder($"{e.Path} {e.Type} {Convert.ToString(e.Mode, 8)} {e.Uid}:{e.Gid} t={e.MTime}");
        if (e.Type is EntryType.Symlink or EntryType.Hardlink) sb.Append(" -> ").Append(e.LinkTarget);
        if (e.Type is EntryType.CharDevice or EntryType.BlockDevice) sb.Append($" dev={e.DevMajor}:{e.DevMinor}");
        if (e.Type == EntryType.Regular)
        {
            using var s = tree.OpenContent(e);
            var ms = new MemoryStream();
            s.CopyTo(ms);
            var data = ms.ToArray();
            Assert.Equal(e.Size, data.Length);
            sb.Append(data.Length <= 32 && data.All(b => b is >= 0x20 and < 0x7f or (byte)'\n')
                ? $" '{Encoding.ASCII.GetString(data).Replace("\n", "\\n")}'"
                : $" sha256={Convert.ToHexStringLower(SHA256.HashData(data))}");
        }
        foreach (var (k, v) in e.Xattrs) sb.Append($" {k}={Convert.ToHexStringLower(v)}");
        return sb.ToString();
    }).ToList();

    private static Image Open(string layoutDir) => new OciLayoutReference(layoutDir).OpenImage();

    /// <summary>An OCI layout whose layers are the given tars, uncompressed, so a test controls every byte.</summary>
    private static Image MakeImage(string dir, params byte[][] layers)
    {
        var blobs = Path.Join(dir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        Descriptor Put(byte[] data, string mediaType)
        {
            var digest = Digest.Sha256(data);
            System.IO.File.WriteAllBytes(Path.Join(blobs, digest[7..]), data);
            return new Descriptor { MediaType = mediaType, Digest = digest, Size = data.Length };
        }
        var config = new ImageConfig { Architecture = "amd64", RootFs = new RootFs { DiffIds = layers.Select(l => Digest.Sha256(l)).ToList() } };
        var manifest = new ImageManifest
        {
            Config = Put(OciJson.Serialize(config), MediaTypes.ImageConfig),
            Layers = layers.Select(l => Put(l, MediaTypes.Layer)).ToList(),
        };
        var index = new ImageIndex { Manifests = [Put(OciJson.Serialize(manifest), MediaTypes.ImageManifest)] };
        System.IO.File.WriteAllText(Path.Join(dir, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        System.IO.File.WriteAllBytes(Path.Join(dir, "index.json"), OciJson.Serialize(index));
        return Open(dir);
    }

    private static (List<string> Flattened, List<string> Extracted) FlattenAndExtract(Image image, string target)
    {
        List<string> flattened;
        using (var tree = FlattenedImageTree.Open(image, null)) flattened = Describe(tree);
        ImageExtractor.Extract(image, target, null);
        using var disk = DirectoryTree.Open(target);
        return (flattened, Describe(disk));
    }

    [Fact]
    public void UmociImage_ExtractAndFlattenMatchUmociUnpack()
    {
        using var image = Open(umoci.Layout);
        Assert.Equal(3, image.Manifest.Layers.Count);
        using var tmp = new TempDir();
        var (flattened, extracted) = FlattenAndExtract(image, tmp["out"]);
        using var reference = DirectoryTree.Open(umoci.Reference);
        var expected = Describe(reference);
        Assert.Equal(expected, extracted);
        Assert.Equal(expected, flattened);
    }

    [Fact]
    public void UmociImage_FlattenedTreeHoldsTheFinalState()
    {
        using var image = Open(umoci.Layout);
        using var tree = FlattenedImageTree.Open(image, null);
        string Text(string p) => Encoding.UTF8.GetString(ReadAll(tree, tree.Find(p)!));

        var hello = tree.Find("etc/hello")!;
        Assert.Equal(EntryType.Regular, hello.Type);
        Assert.Equal("hello v2\n", Text("etc/hello"));
        Assert.Equal("val"u8.ToArray(), hello.GetXattr("user.test"));
        Assert.Equal((EntryType.Hardlink, "etc/hello"), (tree.Find("etc/hello-link")!.Type, tree.Find("etc/hello-link")!.LinkTarget));
        Assert.Equal(2, hello.LinkCount);

        var tool = tree.Find("bin/tool")!;
        Assert.Equal((Oct("700"), 2000, 2000), (tool.Mode, tool.Uid, tool.Gid));
        Assert.Equal(Oct("4755"), tree.Find("bin/su")!.Mode);
        Assert.Equal(UmociImageFixture.Capability, tree.Find("usr/bin/ping")!.GetXattr("security.capability"));

        Assert.Null(tree.Find("link"));
        Assert.Equal((EntryType.Symlink, "/etc/hello"), (tree.Find("abs")!.Type, tree.Find("abs")!.LinkTarget));

        Assert.Equal(EntryType.Regular, tree.Find("data/a")!.Type);
        Assert.Equal((EntryType.Hardlink, "data/a"), (tree.Find("data/b")!.Type, tree.Find("data/b")!.LinkTarget));
        // data/c carried the data in the base layer and is gone: the first surviving path takes over.
        Assert.Null(tree.Find("data/c"));
        Assert.Equal((EntryType.Regular, "cde\n"), (tree.Find("data/d")!.Type, Text("data/d")));
        Assert.Equal((EntryType.Hardlink, "data/d"), (tree.Find("data/e")!.Type, tree.Find("data/e")!.LinkTarget));

        Assert.DoesNotContain(tree.Entries, e => e.Path.StartsWith("gone", StringComparison.Ordinal));
        Assert.Equal(["opq/new3"], tree.Entries.Where(e => e.Path.StartsWith("opq/", StringComparison.Ordinal)).Select(e => e.Path));
        Assert.Equal(["keep/mine"], tree.Entries.Where(e => e.Path.StartsWith("keep/", StringComparison.Ordinal)).Select(e => e.Path));

        var devNull = tree.Find("dev/null")!;
        Assert.Equal((EntryType.CharDevice, 1, 3, Oct("666")), (devNull.Type, devNull.DevMajor, devNull.DevMinor, devNull.Mode));
        Assert.Equal(EntryType.Fifo, tree.Find("dev/fifo")!.Type);

        Assert.Equal(EntryType.Directory, tree.Find("thing")!.Type);
        Assert.Equal("inner\n", Text("thing/inner"));
        Assert.Equal((EntryType.Regular, "nowfile\n"), (tree.Find("dir2")!.Type, Text("dir2")));
        Assert.Null(tree.Find("dir2/x"));

        Assert.Equal(tree.Entries.Select(e => e.Path).Order(StringComparer.Ordinal), tree.Entries.Select(e => e.Path));
    }

    private static int Oct(string s) => Convert.ToInt32(s, 8);

    private static byte[] ReadAll(ITree tree, TreeEntry e)
    {
        using var s = tree.OpenContent(e);
        var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Fact]
    public void FlattenedTreeDeletesItsStagingOnDispose()
    {
        using var image = Open(umoci.Layout);
        string staging;
        using (var tree = FlattenedImageTree.Open(image, null))
        {
            using var s = tree.OpenContent(tree.Find("etc/hello")!);
            staging = tree.StagingPath;
            Assert.StartsWith(Path.GetTempPath(), staging);
            Assert.True(Directory.Exists(staging));
            Assert.NotEmpty(Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories));
        }
        Assert.False(Directory.Exists(staging));
    }

    [Fact]
    public void WhiteoutsOpaqueMarkersReplacementsAndHardlinkRegrouping()
    {
        using var tmp = new TempDir();
        var layer1 = LayerTars.Bytes(
            LayerTars.Dir("a"), LayerTars.File("a/x", "x"), LayerTars.File("a/y", "y"),
            LayerTars.Dir("b"), LayerTars.File("b/z", "z"),
            LayerTars.File("c", "c"),
            LayerTars.Dir("d"), LayerTars.File("d/e", "e"),
            LayerTars.File("h1", "hl", "640", 7, 8), LayerTars.Hardlink("h2", "h1"), LayerTars.Hardlink("h3", "./h1"),
            LayerTars.File("keep", "k"),
            LayerTars.Symlink("s", "a/x"));
        var layer2 = LayerTars.Bytes(
            LayerTars.File("a/new", "new"),
            LayerTars.File("a/.wh..wh..opq", ""), // after an entry of its own layer, which stays
            LayerTars.File(".wh.b", ""),
            LayerTars.File("d", "nowfile"),
            LayerTars.Dir("c", "700"), LayerTars.File("c/inside", "i"),
            LayerTars.File(".wh.h1", ""),
            LayerTars.File("implicit/deep/file", "deep"),
            LayerTars.Hardlink("keep2", "keep"),
            LayerTars.File("same", "s"), LayerTars.File(".wh.same", ""),
            LayerTars.File(".wh.never-existed", ""),
            LayerTars.File("s", "replaced symlink"),
            LayerTars.Fifo("pipe"), LayerTars.Char("null", 1, 3));
        using var image = MakeImage(tmp["img"], layer1, layer2);
        var (flattened, extracted) = FlattenAndExtract(image, tmp["out"]);
        string[] expected =
        [
            "a Directory 755 0:0 t=1000",
            "a/new Regular 644 0:0 t=1000 'new'",
            "c Directory 700 0:0 t=1000",
            "c/inside Regular 644 0:0 t=1000 'i'",
            "d Regular 644 0:0 t=1000 'nowfile'",
            "h2 Regular 640 7:8 t=1000 'hl'",
            "h3 Hardlink 640 7:8 t=1000 -> h2",
            "implicit Directory 755 0:0 t=0",
            "implicit/deep Directory 755 0:0 t=0",
            "implicit/deep/file Regular 644 0:0 t=1000 'deep'",
            "keep Regular 644 0:0 t=1000 'k'",
            "keep2 Hardlink 644 0:0 t=1000 -> keep",
            "null CharDevice 666 0:0 t=1000 dev=1:3",
            "pipe Fifo 600 0:0 t=1000",
            "s Regular 644 0:0 t=1000 'replaced symlink'",
            "same Regular 644 0:0 t=1000 's'",
        ];
        Assert.Equal(expected, flattened);
        Assert.Equal(expected, extracted);
    }

    [Fact]
    public void BinaryXattrsAndOwnersSurviveFlatteningAndExtraction()
    {
        using var tmp = new TempDir();
        var layer = LayerTars.Bytes(
            LayerTars.File("bin/ping", "ping", "4755", 0, 0) with
            {
                xattrs = new() { ["security.capability"] = Convert.ToHexStringLower(UmociImageFixture.Capability), ["user.bin"] = "00ff80" },
            },
            LayerTars.File("home/u/f", "f", "600", 1000, 1000));
        using var image = MakeImage(tmp["img"], layer);
        var (flattened, extracted) = FlattenAndExtract(image, tmp["out"]);
        Assert.Equal(flattened, extracted);
        Assert.Contains($"bin/ping Regular 4755 0:0 t=1000 'ping' security.capability={Convert.ToHexStringLower(UmociImageFixture.Capability)} user.bin=00ff80", flattened);
        Assert.Contains("home/u/f Regular 600 1000:1000 t=1000 'f'", flattened);
    }

    // ---- refusals -------------------------------------------------------------------------

    /// <summary>Both consumers of the applier refuse the image, naming the layer and the entry, and write nothing outside.</summary>
    private static void AssertRefused(string expectedMessagePart, int badLayer, params byte[][] layers)
    {
        using var tmp = new TempDir();
        using var image = MakeImage(tmp["img"], layers);
        var digest = image.Manifest.Layers[badLayer].Digest;

        var e1 = Assert.Throws<TreechunkException>(() => FlattenedImageTree.Open(image, null).Dispose());
        var e2 = Assert.Throws<TreechunkException>(() => ImageExtractor.Extract(image, tmp["out"], null));
        foreach (var e in new[] { e1, e2 })
        {
            Assert.StartsWith($"layer {digest}: refusing entry ", e.Message);
            Assert.Contains(expectedMessagePart, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(ExitCodes.BadInput, e.ExitCode);
        }
    }

    [Fact]
    public void RefusesDotDotEscape()
    {
        AssertRefused("'../escape': the path leaves the image root through '..'", 0,
            LayerTars.Bytes(LayerTars.File("../escape", "x")));
        AssertRefused("'a/../../escape': the path leaves the image root through '..'", 0,
            LayerTars.Bytes(LayerTars.Dir("a"), LayerTars.File("a/../../escape", "x")));
    }

    [Fact]
    public void RefusesAbsolutePath()
    {
        AssertRefused("'/etc/passwd': absolute paths are not allowed in a layer", 0,
            LayerTars.Bytes(LayerTars.File("/etc/passwd", "root::0:0::/:/bin/sh")));
    }

    [Fact]
    public void RefusesWritingThroughASymlinkedParent()
    {
        using var outside = new TempDir("outside");
        AssertRefused("'evil/x': parent 'evil' is a symlink", 0,
            LayerTars.Bytes(LayerTars.Symlink("evil", outside.Path), LayerTars.File("evil/x", "pwned")));
        AssertRefused("'evil/sub/x': parent 'evil' is a symlink", 0,
            LayerTars.Bytes(LayerTars.Symlink("evil", "../.."), LayerTars.File("evil/sub/x", "pwned")));
        // Across layers, the error names the layer that writes through the link.
        AssertRefused("'d/evil/x': parent 'd/evil' is a symlink", 1,
            LayerTars.Bytes(LayerTars.Dir("d"), LayerTars.Symlink("d/evil", outside.Path)),
            LayerTars.Bytes(LayerTars.File("d/evil/x", "pwned")));
        // A whiteout through a symlink would delete outside the root.
        System.IO.File.WriteAllText(Path.Join(outside.Path, "victim"), "safe");
        AssertRefused("'evil/.wh.victim': parent 'evil' is a symlink", 1,
            LayerTars.Bytes(LayerTars.Symlink("evil", outside.Path)),
            LayerTars.Bytes(LayerTars.File("evil/.wh.victim", "")));
        Assert.Equal(["victim"], Directory.GetFileSystemEntries(outside.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void RefusesHardlinksThatEscape()
    {
        AssertRefused("'h': hardlink target '../../etc/passwd' leaves the image root through '..'", 0,
            LayerTars.Bytes(LayerTars.Hardlink("h", "../../etc/passwd")));
        AssertRefused("'h': hardlink target '/etc/passwd' is an absolute path", 0,
            LayerTars.Bytes(LayerTars.Hardlink("h", "/etc/passwd")));
        AssertRefused("'h': hardlink target 'evil/passwd': parent 'evil' is a symlink", 1,
            LayerTars.Bytes(LayerTars.Symlink("evil", "/etc")),
            LayerTars.Bytes(LayerTars.Hardlink("h", "evil/passwd")));
        AssertRefused("'h': hardlink target 'missing' does not exist", 0,
            LayerTars.Bytes(LayerTars.Hardlink("h", "missing")));
    }

    // ---- damaged input --------------------------------------------------------------------

    [Fact]
    public void FlippedByteInACompressedLayerIsADigestMismatchNamingTheBlob()
    {
        using var tmp = new TempDir();
        Proc.Check("cp", "-a", umoci.Layout, tmp["img"]);
        using var image = Open(tmp["img"]);
        var layer = image.Manifest.Layers.MaxBy(l => l.Size)!;
        var path = OciLayout.BlobPath(tmp["img"], layer.Digest);
        var bytes = System.IO.File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x01;
        System.IO.File.WriteAllBytes(path, bytes);

        var e1 = Assert.Throws<TreechunkException>(() => FlattenedImageTree.Open(image, null).Dispose());
        var e2 = Assert.Throws<TreechunkException>(() => ImageExtractor.Extract(image, tmp["out"], null));
        foreach (var e in new[] { e1, e2 })
        {
            Assert.StartsWith($"layer blob {layer.Digest} is corrupt", e.Message);
            Assert.Equal(ExitCodes.VerificationFailed, e.ExitCode);
        }
    }

    [Fact]
    public void FlippedByteInUncompressedContentIsCaughtAtTheEnd()
    {
        using var tmp = new TempDir();
        var good = LayerTars.Bytes(LayerTars.File("f", new string('a', 5000)));
        using var image = MakeImage(tmp["img"], good);
        var path = OciLayout.BlobPath(tmp["img"], image.Manifest.Layers[0].Digest);
        var bytes = System.IO.File.ReadAllBytes(path);
        int at = Array.IndexOf(bytes, (byte)'a') + 100;
        bytes[at] = (byte)'b'; // still a well-formed tar: only the digest can tell
        System.IO.File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<TreechunkException>(() => ImageExtractor.Extract(image, tmp["out"], null));
        Assert.StartsWith($"layer blob {image.Manifest.Layers[0].Digest} is corrupt", e.Message);
        Assert.Equal(ExitCodes.VerificationFailed, e.ExitCode);
    }

    [Fact]
    public void TruncatedLayerTarIsAClearError()
    {
        using var tmp = new TempDir();
        var full = LayerTars.Bytes(LayerTars.File("small", "s"), LayerTars.File("big", new string('b', 20000)));
        // Headers and content of "small" take 1024 bytes, "big"'s header 512 more; cut inside its content.
        var cut = full[..(1536 + 10000)];
        using var image = MakeImage(tmp["img"], cut);
        var e = Assert.Throws<TreechunkException>(() => FlattenedImageTree.Open(image, null).Dispose());
        Assert.Equal($"layer {image.Manifest.Layers[0].Digest}: truncated tar (entry 'big' ends early)", e.Message);
    }

    [Fact]
    public void ExtractRefusesANonEmptyTarget()
    {
        using var tmp = new TempDir();
        using var image = MakeImage(tmp["img"], LayerTars.Bytes(LayerTars.File("f", "x")));
        Directory.CreateDirectory(tmp["out"]);
        System.IO.File.WriteAllText(tmp["out/existing"], "x");
        var e = Assert.Throws<TreechunkException>(() => ImageExtractor.Extract(image, tmp["out"], null));
        Assert.Contains("is not empty", e.Message);
        ImageExtractor.Extract(image, tmp["absent/nested"], null);
        Assert.Equal("x", System.IO.File.ReadAllText(tmp["absent/nested/f"]));
    }
}
