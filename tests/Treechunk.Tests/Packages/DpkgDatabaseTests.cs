using System.IO.Compression;
using FsCheck.Fluent;
using System.Runtime.InteropServices;
using System.Text;
using Treechunk.Packages;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using Xunit;

namespace Treechunk.Tests.Packages;

public class DpkgDatabaseTests
{
    private static string MultiarchTuple => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "x86_64-linux-gnu",
        Architecture.Arm64 => "aarch64-linux-gnu",
        var a => throw new PlatformNotSupportedException($"no Debian multiarch tuple known for {a}"),
    };

    [Fact]
    public void RealDebianTreeGroupsBinariesBySourcePackage()
    {
        using var tree = DirectoryTree.Open(Fixtures.DebianTree);
        var db = PackageDatabases.Detect(tree);

        Assert.NotNull(db);
        Assert.Equal("dpkg", db.Kind);
        Assert.Equal("openssl", db.OwnerOf["usr/bin/openssl"]);
        Assert.Equal("openssl", db.OwnerOf[$"usr/lib/{MultiarchTuple}/libssl.so.3"]);
        var openssl = db.Components["openssl"];
        Assert.Contains("openssl", openssl.Packages);
        Assert.Contains("libssl3", openssl.Packages);
        Assert.NotEmpty(openssl.ChangeTimes);
        Assert.Equal(openssl.ChangeTimes.OrderByDescending(t => t), openssl.ChangeTimes);
        Assert.Equal(openssl.ChangeTimes.Distinct().Count(), openssl.ChangeTimes.Count);
        // Changelog entries of a maintained package are recent history, not parse garbage.
        Assert.All(openssl.ChangeTimes, t => Assert.InRange(t, 631152000L /* 1990 */, DateTimeOffset.UtcNow.AddYears(2).ToUnixTimeSeconds()));
    }

    [Fact]
    public void RealDebianTreeResolvesUsrMerge()
    {
        using var tree = DirectoryTree.Open(Fixtures.DebianTree);
        var db = PackageDatabases.Detect(tree)!;

        var bashList = File.ReadAllLines(Path.Join(Fixtures.DebianTree, "var/lib/dpkg/info/bash.list"));
        Assert.Contains("/bin/bash", bashList);
        Assert.Equal(EntryType.Symlink, tree.Find("bin")!.Type);
        Assert.Equal("bash", db.OwnerOf["usr/bin/bash"]);
        // bin -> usr/bin was made by the installer: packages list /bin as a directory, so they own usr/bin, not the link.
        Assert.False(db.OwnerOf.ContainsKey("bin"), "bin owned by " + db.OwnerOf.GetValueOrDefault("bin"));
        Assert.True(db.OwnerOf.ContainsKey("usr/bin"));
        Assert.All(db.OwnerOf.Keys, p => Assert.NotNull(tree.Find(p)));
        Assert.All(db.OwnerOf.Values, c => Assert.True(db.Components.ContainsKey(c)));
    }

    [Fact]
    public void RealDebianTreeOwnsMostPackagedFiles()
    {
        using var tree = DirectoryTree.Open(Fixtures.DebianTree);
        var db = PackageDatabases.Detect(tree)!;
        var binaries = tree.Entries.Where(e => e.Type == EntryType.Regular && e.Path.StartsWith("usr/bin/")).ToList();
        // usr/bin holds only packaged programs in a fresh minbase install.
        Assert.All(binaries, e => Assert.True(db.OwnerOf.ContainsKey(e.Path), $"{e.Path} has no owner"));
        Assert.Equal(db.Components.Keys.OrderBy(k => k, StringComparer.Ordinal), db.Components.Keys);
    }

    [Fact]
    public void SyntheticStatusWithMultiarchListsAndVersionedSource()
    {
        using var dir = new TempDir("dpkg");
        var root = dir.Path;
        Write(root, "var/lib/dpkg/status", """
            Package: libfoo1
            Status: install ok installed
            Architecture: amd64
            Multi-Arch: same
            Source: foo (1.2-1)
            Version: 1.2-1+b1
            Description: foo library
             A library.
             .
             Spanning lines.

            Package: foo-bin
            Status: install ok installed
            Architecture: amd64
            Source: foo
            Version: 1.2-1

            Package: bar
            Status: install ok installed
            Architecture: all
            Version: 3

            Package: gone
            Status: deinstall ok config-files
            Architecture: amd64

            Package: held
            Status: hold ok installed
            Architecture: amd64
            """);
        Write(root, "var/lib/dpkg/info/libfoo1:amd64.list", "/.\n/lib\n/lib/libfoo.so.1\n/usr/share/doc/libfoo1\n");
        Write(root, "var/lib/dpkg/info/foo-bin.list", "/.\n/usr\n/usr/share\n/usr/share/common\n/usr/share/common/foo\n/usr/bin/foo\n/usr/bin/missing\n");
        Write(root, "var/lib/dpkg/info/bar.list", "/.\n/sbin\n/sbin/bar\n/usr/share/common\n/usr/share/common/bar\n");
        Write(root, "var/lib/dpkg/info/gone.list", "/etc/gone.conf\n");
        Write(root, "var/lib/dpkg/info/held.list", "/usr/bin/held\n");
        Write(root, "usr/lib/libfoo.so.1", "x");
        Write(root, "usr/sbin/bar", "x");
        Write(root, "usr/bin/foo", "x");
        Write(root, "usr/bin/held", "x");
        Write(root, "etc/gone.conf", "x");
        Write(root, "usr/share/common/foo", "x");
        Write(root, "usr/share/common/bar", "x");
        Directory.CreateDirectory(Path.Join(root, "usr/share/doc/libfoo1"));
        File.CreateSymbolicLink(Path.Join(root, "lib"), "usr/lib");      // relative, as usrmerge makes it
        File.CreateSymbolicLink(Path.Join(root, "sbin"), "/usr/sbin");   // absolute: must resolve inside the tree
        WriteGzip(root, "usr/share/doc/foo-bin/changelog.Debian.gz", """
            foo (1.2-1) unstable; urgency=medium

              * New upstream release.

             -- Jane Doe <jane@example.org>  Thu,  1 Jun 2023 12:00:00 +0200

            foo (1.1-1) unstable; urgency=low

              * Initial release.

             -- Jane Doe <jane@example.org>  Mon, 02 Jan 2023 10:00:00 +0000
            """);

        using var tree = DirectoryTree.Open(root);
        var db = PackageDatabases.Detect(tree)!;

        Assert.Equal("foo", db.OwnerOf["usr/lib/libfoo.so.1"]);
        Assert.Equal("foo", db.OwnerOf["usr/bin/foo"]);
        Assert.Equal("foo", db.OwnerOf["usr/share/doc/libfoo1"]);
        Assert.Equal("bar", db.OwnerOf["usr/sbin/bar"]);
        Assert.Equal("held", db.OwnerOf["usr/bin/held"]);
        // Both list the directory; "bar" sorts first.
        Assert.Equal("bar", db.OwnerOf["usr/share/common"]);
        Assert.Equal("foo", db.OwnerOf["usr/share/common/foo"]);
        Assert.False(db.OwnerOf.ContainsKey("etc/gone.conf"));
        Assert.False(db.OwnerOf.ContainsKey("usr/bin/missing"));
        Assert.False(db.OwnerOf.ContainsKey("lib"));
        Assert.False(db.OwnerOf.ContainsKey("sbin"));
        Assert.Equal("foo", db.OwnerOf["usr/lib"]);

        Assert.Equal(new[] { "bar", "foo", "held" }, db.Components.Keys);
        Assert.Equal(new[] { "foo-bin", "libfoo1" }, db.Components["foo"].Packages);
        Assert.Equal(
            new[] { DateTimeOffset.Parse("2023-06-01T10:00:00Z").ToUnixTimeSeconds(), DateTimeOffset.Parse("2023-01-02T10:00:00Z").ToUnixTimeSeconds() },
            db.Components["foo"].ChangeTimes);
        Assert.Empty(db.Components["bar"].ChangeTimes);
    }

    [Fact]
    public void StatusParagraphsSeparatedByWhitespaceLinesAndCrLf()
    {
        var text = "Package: a\r\nStatus: install ok installed\r\n \r\nPackage: b\r\nStatus: install ok triggers-pending\r\nSource: bsrc\r\n";
        var packages = DpkgDatabase.ParseStatus(new MemoryStream(Encoding.UTF8.GetBytes(text)));
        Assert.Equal(new[] { "a", "b" }, packages.Select(p => p.Name));
        Assert.Equal(new[] { "a", "bsrc" }, packages.Select(p => p.Source));
    }

    [Fact]
    public void MalformedStatusLineIsAClearError()
    {
        var text = "Package: a\nStatus: install ok installed\nthis is not a field\n";
        var e = Assert.Throws<TreechunkException>(() => DpkgDatabase.ParseStatus(new MemoryStream(Encoding.UTF8.GetBytes(text))));
        Assert.Contains("var/lib/dpkg/status:3", e.Message);
    }

    [Theory]
    [InlineData(" -- A <a@b>  Thu, 01 Jun 2023 10:00:00 +0000", 1685613600L)]
    [InlineData(" -- A <a@b>  Thu,  1 Jun 2023 12:00:00 +0200", 1685613600L)]
    [InlineData(" -- A <a@b>  Wed, 31 May 2023 23:30:00 -1030", 1685613600L)]
    [InlineData(" -- A <a@b>  Sat, 31 Dec 2016 23:59:60 +0000", 1483228800L)]
    [InlineData(" -- A <a@b>  01 Jun 2023 10:00 +0000", 1685613600L)]
    public void TrailerDates(string line, long expected) => Assert.Equal(expected, DpkgDatabase.ParseTrailerTime(line));

    [Theory]
    [InlineData(" -- A <a@b>")]
    [InlineData(" -- A <a@b>  Thu, 32 Jun 2023 10:00:00 +0000")]
    [InlineData(" -- A <a@b>  Thu, 01 Foo 2023 10:00:00 +0000")]
    [InlineData(" -- A <a@b>  Thu, 01 Jun 2023 10:00:00 UTC")]
    public void BadTrailerDatesAreIgnored(string line) => Assert.Null(DpkgDatabase.ParseTrailerTime(line));

    /// <summary>
    /// The byte-level changelog reader finds exactly the trailer times a line reader finds,
    /// whatever the line breaks (\n, \r, \r\n, split across reads) and line lengths (longer
    /// than its buffer included).
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 60)]
    public FsCheck.Property ChangelogTimesMatchALineReader(int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        string[] breaks = ["\n", "\r", "\r\n"];
        for (int i = random.Next(0, 40); i > 0; i--)
        {
            text.Append(random.Next(4) switch
            {
                0 => $" -- A <a@b>  Thu, {random.Next(1, 29):00} Jun {random.Next(1995, 2030)} 10:00:00 +0000",
                1 => new string('x', random.Next(0, 3) == 0 ? random.Next(60_000, 140_000) : random.Next(0, 80)),
                2 => "pkg (1.0-1) unstable; urgency=medium",
                _ => "  * -- not a trailer -- ü",
            });
            text.Append(breaks[random.Next(breaks.Length)]);
        }
        if (random.Next(2) == 0) text.Append(" -- B <b@c>  Fri, 02 Jun 2023 10:00:00 +0000"); // no final break
        var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
            z.Write(Encoding.UTF8.GetBytes(text.ToString()));

        var expected = new List<long>();
        using (var reader = new StringReader(text.ToString()))
            for (string? line; (line = reader.ReadLine()) != null;)
                if (line.StartsWith(" -- ", StringComparison.Ordinal) && DpkgDatabase.ParseTrailerTime(line) is { } t) expected.Add(t);
        gz.Position = 0;
        var actual = DpkgDatabase.ParseChangelogTimes(gz);
        return expected.SequenceEqual(actual).ToProperty()
            .Label($"expected {string.Join(",", expected)}, got {string.Join(",", actual)}");
    }

    [Fact]
    public void TreeWithoutDatabaseHasNone()
    {
        using var dir = new TempDir("nodb");
        Write(dir.Path, "usr/bin/x", "x");
        using var tree = DirectoryTree.Open(dir.Path);
        Assert.Null(PackageDatabases.Detect(tree));
    }

    internal static void Write(string root, string path, string content)
    {
        var full = Path.Join(root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content.ReplaceLineEndings("\n") + (content.EndsWith('\n') ? "" : "\n"));
    }

    private static void WriteGzip(string root, string path, string content)
    {
        var full = Path.Join(root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        using var file = File.Create(full);
        using var gz = new GZipStream(file, CompressionLevel.Optimal);
        gz.Write(Encoding.UTF8.GetBytes(content.ReplaceLineEndings("\n")));
    }
}
