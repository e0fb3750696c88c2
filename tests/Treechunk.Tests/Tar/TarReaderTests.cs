using System.Security.Cryptography;
using Treechunk.Tar;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using Xunit;

namespace Treechunk.Tests.Tar;

public sealed class TarReaderTests
{
    private sealed record Read(TarEntry Entry, byte[]? Data);

    private static List<Read> ReadAll(string tarPath)
    {
        using var fs = File.OpenRead(tarPath);
        using var reader = new TarReader(fs, "test tar");
        var result = new List<Read>();
        while (reader.Next() is { } e)
        {
            byte[]? data = null;
            if (e.Type == TarEntryType.Regular)
            {
                var ms = new MemoryStream();
                e.Content.CopyTo(ms);
                data = ms.ToArray();
            }
            result.Add(new Read(e, data));
        }
        return result;
    }

    private static Dictionary<string, Read> ByPath(IEnumerable<Read> reads) =>
        reads.Where(r => TreePaths.Normalize(r.Entry.Path) is { Length: > 0 })
            .ToDictionary(r => TreePaths.Normalize(r.Entry.Path)!, StringComparer.Ordinal);

    private static void Python(string script, params string[] args)
    {
        Tools.Require("python3");
        Proc.Check("python3", ["-c", script, .. args]);
    }

    private static readonly byte[] Capability =
        [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    /// <summary>A directory with every kind of entry, owners, special modes, binary xattrs and a long path.</summary>
    private static string MakeRichTree(TempDir tmp)
    {
        var src = tmp["src"];
        Directory.CreateDirectory(src);
        var longDir = string.Join('/', Enumerable.Range(0, 6).Select(i => new string((char)('a' + i), 50)));
        Proc.Sh($"""
            cd '{src}'
            mkdir -p dir/sub '{longDir}'
            echo hello > dir/file
            head -c 1000000 /dev/urandom > big
            : > empty
            printf 'x%.0s' $(seq 1 511) > '{longDir}/deep'
            chmod 0750 dir
            echo s > setuid && chmod 04755 setuid
            echo o > owned && chown 1234:5678 owned && chmod 0640 owned
            ln -s dir/file sym
            ln -s /absolute/target abssym
            echo linked > hl1 && ln hl1 hl2
            mkfifo fifo
            mknod chr c 1 3
            mknod blk b 7 0
            touch -h -d @1000000000 sym
            touch -d @1234567890 dir/file
            """);
        File.SetUnixFileMode(Path.Join(src, "dir/file"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Treechunk.Posix.LibC.SetXattr(Path.Join(src, "big"), "security.capability", Capability);
        Treechunk.Posix.LibC.SetXattr(Path.Join(src, "dir/file"), "user.text", "some value"u8.ToArray());
        Treechunk.Posix.LibC.SetXattr(Path.Join(src, "dir/file"), "user.binary", [0, 0xff, 0x80, (byte)'\n', (byte)'=']);
        return src;
    }

    private static void AssertMatchesDisk(string src, Dictionary<string, Read> entries)
    {
        using var tree = DirectoryTree.Open(src);
        Assert.Equal(tree.Entries.Select(e => e.Path).Order(StringComparer.Ordinal), entries.Keys.Order(StringComparer.Ordinal));
        foreach (var d in tree.Entries)
        {
            var (t, data) = entries[d.Path];
            var expectedType = d.Type switch
            {
                EntryType.Regular => TarEntryType.Regular,
                EntryType.Hardlink => TarEntryType.Hardlink,
                EntryType.Directory => TarEntryType.Directory,
                EntryType.Symlink => TarEntryType.Symlink,
                EntryType.CharDevice => TarEntryType.CharDevice,
                EntryType.BlockDevice => TarEntryType.BlockDevice,
                _ => TarEntryType.Fifo,
            };
            // GNU tar stores the first path it meets as the file, which need not be the first in sort order.
            if (d.Type is EntryType.Regular or EntryType.Hardlink && t.Type is TarEntryType.Regular or TarEntryType.Hardlink)
                expectedType = t.Type;
            Assert.True(expectedType == t.Type, $"{d.Path}: type {t.Type}, expected {expectedType}");
            Assert.True(d.Mode == t.Mode, $"{d.Path}: mode {Convert.ToString(t.Mode, 8)}, expected {Convert.ToString(d.Mode, 8)}");
            Assert.Equal(d.Uid, t.Uid);
            Assert.Equal(d.Gid, t.Gid);
            Assert.True(d.MTime == t.MTime, $"{d.Path}: mtime {t.MTime}, expected {d.MTime}");
            if (d.Type == EntryType.Symlink) Assert.Equal(d.LinkTarget, t.LinkName);
            if (d.Type is EntryType.CharDevice or EntryType.BlockDevice)
            {
                Assert.Equal(d.DevMajor, t.DevMajor);
                Assert.Equal(d.DevMinor, t.DevMinor);
            }
            if (t.Type == TarEntryType.Regular)
            {
                Assert.Equal(File.ReadAllBytes(Path.Join(src, d.Path)), data);
                Assert.Equal(data!.Length, t.Size);
            }
            Assert.Equal(d.Xattrs.Select(x => x.Key), t.Xattrs.Select(x => x.Key));
            foreach (var (k, v) in d.Xattrs) Assert.Equal(v, t.Xattrs.Single(x => x.Key == k).Value);
        }
    }

    [Fact]
    public void ReadsGnuTarPaxArchiveWithEveryEntryKindAndBinaryXattrs()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        var src = MakeRichTree(tmp);
        Proc.Check("tar", "-C", src, "--format=pax", "--xattrs", "--xattrs-include=*", "-cf", tmp["a.tar"], ".");
        var entries = ByPath(ReadAll(tmp["a.tar"]));
        AssertMatchesDisk(src, entries);

        Assert.Equal(Capability, entries["big"].Entry.Xattrs.Single().Value);
        Assert.Equal([0, 0xff, 0x80, (byte)'\n', (byte)'='], entries["dir/file"].Entry.GetXattr("user.binary"));
        Assert.Equal(Convert.ToInt32("4755", 8), entries["setuid"].Entry.Mode);
        var links = new[] { entries["hl1"].Entry, entries["hl2"].Entry };
        var link = links.Single(l => l.Type == TarEntryType.Hardlink);
        Assert.Equal(links.Single(l => l.Type == TarEntryType.Regular).Path, link.LinkName);
        Assert.Equal(0, link.Size);
        Assert.Contains(entries.Keys, k => k.Length > 255);
    }

    [Fact]
    public void ReadsGnuFormatWithLongNamesLongLinksAndBase256Numbers()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        var src = MakeRichTree(tmp);
        var longTarget = "t/" + new string('x', 150) + "/" + new string('y', 100);
        Proc.Sh($"cd '{src}' && ln -s '{longTarget}' longsym");
        // 3000000 does not fit the 7 octal digits of a uid field, so GNU tar writes it in base-256.
        Proc.Check("tar", "-C", src, "--format=gnu", "--owner=u:3000000", "--group=g:4000000", "-cf", tmp["g.tar"], ".");
        var entries = ByPath(ReadAll(tmp["g.tar"]));
        Assert.Equal(longTarget, entries["longsym"].Entry.LinkName);
        Assert.All(entries.Values, r => Assert.Equal(3000000, r.Entry.Uid));
        Assert.All(entries.Values, r => Assert.Equal(4000000, r.Entry.Gid));
        var deep = entries.Single(kv => kv.Key.EndsWith("/deep", StringComparison.Ordinal));
        Assert.True(deep.Key.Length > 255);
        Assert.Equal(new string('x', 511), System.Text.Encoding.ASCII.GetString(deep.Value.Data!));
        Assert.Equal(File.ReadAllBytes(Path.Join(src, "big")), entries["big"].Data);
    }

    [Theory]
    [InlineData("gnu")]
    [InlineData("pax")]
    public void LongUtf8NamesCutMidCharacterInTheHeaderFieldStillRead(string format)
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        // 99 bytes then a two-byte character: the 100-byte name field ends inside it.
        var name = new string('a', 99) + "é-tail";
        var target = new string('t', 99) + "ü-target";
        Directory.CreateDirectory(tmp["n"]);
        File.WriteAllText(Path.Join(tmp["n"], name), "utf8");
        File.CreateSymbolicLink(Path.Join(tmp["n"], "l"), target);
        Proc.Check("tar", "-C", tmp["n"], $"--format={format}", "-cf", tmp["n.tar"], name, "l");
        var entries = ByPath(ReadAll(tmp["n.tar"]));
        Assert.Equal("utf8"u8.ToArray(), entries[name].Data);
        Assert.Equal(target, entries["l"].Entry.LinkName);
    }

    [Fact]
    public void ReadsUstarPrefixField()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        var dir = string.Join('/', Enumerable.Repeat("d" + new string('p', 38), 4));
        Proc.Sh($"mkdir -p '{tmp["u"]}/{dir}' && echo u > '{tmp["u"]}/{dir}/file'");
        Proc.Check("tar", "-C", tmp["u"], "--format=ustar", "-cf", tmp["u.tar"], dir);
        var entries = ByPath(ReadAll(tmp["u.tar"]));
        Assert.Equal("u\n"u8.ToArray(), entries[dir + "/file"].Data);
    }

    [Fact]
    public void PythonPaxGlobalHeadersBinaryValuesAndOverrides()
    {
        using var tmp = new TempDir();
        Python("""
            import sys, tarfile, io
            binary = bytes([0, 1, 2, 0xff, 0xfe, 0x80]).decode('utf-8', 'surrogateescape')
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'uid': '777', 'gid': '888'}) as t:
                a = tarfile.TarInfo('plain'); a.size = 3; a.mode = 0o644
                t.addfile(a, io.BytesIO(b'abc'))
                b = tarfile.TarInfo('short'); b.size = 2; b.mode = 0o600; b.uid = 5
                b.pax_headers = {'path': 'overridden/by/pax/' + 'q' * 300, 'uid': '4294', 'mtime': '1700000000.75',
                                 'SCHILY.xattr.security.capability': binary, 'SCHILY.xattr.user.a': 'A', 'SCHILY.xattr.user.empty': ''}
                t.addfile(b, io.BytesIO(b'xy'))
                c = tarfile.TarInfo('lnk'); c.type = tarfile.SYMTYPE; c.linkname = 'short'
                c.pax_headers = {'linkpath': 'l' * 400}
                t.addfile(c)
            """, tmp["p.tar"]);
        var entries = ReadAll(tmp["p.tar"]);
        Assert.Equal(3, entries.Count);
        Assert.Equal("plain", entries[0].Entry.Path);
        Assert.Equal(777, entries[0].Entry.Uid);
        Assert.Equal(888, entries[0].Entry.Gid);
        var b = entries[1].Entry;
        Assert.Equal("overridden/by/pax/" + new string('q', 300), b.Path);
        Assert.Equal(4294, b.Uid);
        Assert.Equal(888, b.Gid);
        Assert.Equal(1700000000, b.MTime);
        Assert.Equal("xy"u8.ToArray(), entries[1].Data);
        Assert.Equal(["security.capability", "user.a", "user.empty"], b.Xattrs.Select(x => x.Key));
        Assert.Empty(b.GetXattrValue("user.empty")!);
        Assert.Equal(new byte[] { 0, 1, 2, 0xff, 0xfe, 0x80 }, b.GetXattrValue("security.capability"));
        Assert.Equal(new string('l', 400), entries[2].Entry.LinkName);
        Assert.Equal(TarEntryType.Symlink, entries[2].Entry.Type);
    }

    [Fact]
    public void SkipsUnreadContentAndLimitsEachStreamToItsEntry()
    {
        using var tmp = new TempDir();
        int[] sizes = [0, 1, 511, 512, 513, 100_000, 3];
        Python("""
            import sys, tarfile, io
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
                for i, n in enumerate(int(x) for x in sys.argv[2:]):
                    ti = tarfile.TarInfo('f%d' % i); ti.size = n
                    t.addfile(ti, io.BytesIO(bytes((i * 7 + j) % 251 for j in range(n))))
            """, [tmp["s.tar"], .. sizes.Select(s => s.ToString())]);
        using var fs = File.OpenRead(tmp["s.tar"]);
        using var reader = new TarReader(fs, "s.tar");
        for (int i = 0; i < sizes.Length; i++)
        {
            var e = reader.Next();
            Assert.NotNull(e);
            Assert.Equal($"f{i}", e.Path);
            Assert.Equal(sizes[i], e.Size);
            if (i % 2 == 0) continue; // left unread on purpose
            if (i == 5)
            {
                // Partially read: the rest must still be skipped exactly.
                var part = new byte[1000];
                e.Content.ReadExactly(part);
                continue;
            }
            var buf = new byte[sizes[i] + 100];
            int total = 0, n;
            while ((n = e.Content.Read(buf, total, buf.Length - total)) > 0) total += n;
            Assert.Equal(sizes[i], total);
            Assert.Equal(Enumerable.Range(0, sizes[i]).Select(j => (byte)((i * 7 + j) % 251)), buf[..total]);
        }
        Assert.Null(reader.Next());
        Assert.Null(reader.Next());
    }

    [Fact]
    public void AcceptsArchiveWithoutEndOfArchiveBlocks()
    {
        using var tmp = new TempDir();
        Python("""
            import sys, tarfile, io
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as t:
                ti = tarfile.TarInfo('only'); ti.size = 5
                t.addfile(ti, io.BytesIO(b'12345'))
            open(sys.argv[1], 'wb').write(buf.getvalue()[:1024])
            """, tmp["n.tar"]);
        var entries = ReadAll(tmp["n.tar"]);
        Assert.Equal("12345"u8.ToArray(), Assert.Single(entries).Data);
    }

    private static TreechunkException ReadFails(string path)
    {
        var e = Assert.ThrowsAny<Exception>(() => ReadAll(path));
        return Assert.IsType<TreechunkException>(e);
    }

    [Fact]
    public void TruncatedArchiveIsAClearError()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        Proc.Sh($"mkdir '{tmp["t"]}' && head -c 100000 /dev/urandom > '{tmp["t"]}/payload' && tar -C '{tmp["t"]}' --format=pax -cf '{tmp["t.tar"]}' payload");
        var bytes = File.ReadAllBytes(tmp["t.tar"]);

        File.WriteAllBytes(tmp["cut-content.tar"], bytes[..50_000]);
        var e = ReadFails(tmp["cut-content.tar"]);
        Assert.Equal("test tar: truncated tar (entry 'payload' ends early)", e.Message);

        File.WriteAllBytes(tmp["cut-header.tar"], bytes[..700]);
        Assert.Contains("truncated tar", ReadFails(tmp["cut-header.tar"]).Message);

        // Cut in the middle of the PAX extended header's data.
        File.WriteAllBytes(tmp["cut-pax.tar"], bytes[..520]);
        Assert.Contains("truncated tar", ReadFails(tmp["cut-pax.tar"]).Message);

        // Cut right after the content, before its padding and the end blocks: still truncated.
        File.WriteAllBytes(tmp["cut-pad.tar"], bytes[..(1024 + 512 + 100_000 - 1)]);
        Assert.Contains("truncated tar", ReadFails(tmp["cut-pad.tar"]).Message);
    }

    [Fact]
    public void BadChecksumAndGarbageAreClearErrors()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        Proc.Sh($"mkdir '{tmp["c"]}' && echo a > '{tmp["c"]}/a' && echo b > '{tmp["c"]}/b' && tar -C '{tmp["c"]}' --format=ustar -cf '{tmp["c.tar"]}' a b");
        var bytes = File.ReadAllBytes(tmp["c.tar"]);
        bytes[1024 + 1] ^= 0x20; // second member's name
        File.WriteAllBytes(tmp["bad.tar"], bytes);
        Assert.Equal("test tar: bad tar header checksum at offset 1024 (corrupt or not a tar archive)", ReadFails(tmp["bad.tar"]).Message);

        File.WriteAllBytes(tmp["random.tar"], RandomNumberGenerator.GetBytes(4096));
        Assert.Contains("test tar:", ReadFails(tmp["random.tar"]).Message);
    }

    [Fact]
    public void ContiguousFilesAreRegularAndUnknownTypesAreRefused()
    {
        using var tmp = new TempDir();
        Python("""
            import sys, tarfile, io
            with tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:
                c = tarfile.TarInfo('contiguous'); c.type = tarfile.CONTTYPE; c.size = 4
                t.addfile(c, io.BytesIO(b'data'))
                u = tarfile.TarInfo('weird'); u.type = b'Q'; u.size = 1
                t.addfile(u, io.BytesIO(b'q'))
            """, tmp["t.tar"]);
        using var fs = File.OpenRead(tmp["t.tar"]);
        using var reader = new TarReader(fs, "t.tar");
        var c = reader.Next()!;
        Assert.Equal((TarEntryType.Regular, 4L), (c.Type, c.Size));
        var e = Assert.Throws<TreechunkException>(() => reader.Next());
        Assert.Equal("t.tar: entry 'weird' has unsupported tar type 'Q'", e.Message);
    }

    [Fact]
    public void SparseFilesAreRefused()
    {
        Tools.Require("tar");
        using var tmp = new TempDir();
        Proc.Sh($"mkdir '{tmp["sp"]}' && truncate -s 10M '{tmp["sp"]}/sparse' && echo end >> '{tmp["sp"]}/sparse'");
        Proc.Check("tar", "-C", tmp["sp"], "--format=pax", "--sparse", "-cf", tmp["pax.tar"], "sparse");
        Assert.Contains("sparse", ReadFails(tmp["pax.tar"]).Message);
        Proc.Check("tar", "-C", tmp["sp"], "--format=gnu", "--sparse", "-cf", tmp["gnu.tar"], "sparse");
        Assert.Contains("'sparse' is a GNU sparse file", ReadFails(tmp["gnu.tar"]).Message);
    }
}

internal static class TarEntryTestExtensions
{
    public static byte[]? GetXattrValue(this TarEntry e, string name) => e.Xattrs.FirstOrDefault(x => x.Key == name).Value;

    public static byte[]? GetXattr(this TarEntry e, string name) => e.GetXattrValue(name);
}
