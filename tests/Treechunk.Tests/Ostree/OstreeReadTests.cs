using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Treechunk.Ostree;
using Treechunk.Posix;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.Ostree;

/// <summary>
/// The read side against repositories written by the real ostree, in every mode: trees, content,
/// commits and detached metadata must read back exactly as ostree itself shows them, and every
/// kind of damage must be a clear error naming the object.
/// </summary>
public class OstreeReadTests : IClassFixture<OstreeReadTests.Repos>
{
    public const string Timestamp1 = "2020-01-01T00:00:00Z";
    public const string Timestamp2 = "2021-02-03T04:05:06Z";

    /// <summary>One source tree committed twice (a parent and a child) into a repo of each mode; tests only read these.</summary>
    public sealed class Repos : IDisposable
    {
        public TempDir Dir { get; } = new("ostree-read");
        public string Source => Dir["src"];
        public string this[string mode] => Dir["repo-" + mode];

        public Repos()
        {
            Tools.Require("ostree");
            CreateSource(Source);
            foreach (var mode in new[] { "archive", "bare-user", "bare", "bare-user-only" })
                InitAndCommit(this[mode], mode, Source);
        }

        public void Dispose() => Dir.Dispose();
    }

    private readonly Repos _repos;
    public OstreeReadTests(Repos repos) => _repos = repos;

    public static void CreateSource(string root)
    {
        void Write(string rel, byte[] data, int mode = 0x1A4)
        {
            var full = Path.Join(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, data);
            LibC.Chmod(full, mode);
        }
        void Text(string rel, string text, int mode = 0x1A4) => Write(rel, Encoding.UTF8.GetBytes(text), mode);
        Directory.CreateDirectory(root);
        Text("etc/app.conf", "key=value\n", 0x180);                         // 0600
        Text("usr/bin/tool", "#!/bin/sh\necho tool\n", 0x1ED);              // 0755
        Text("usr/bin/suid-tool", "suid\n", 0x9ED);                         // 04755
        // Incompressible, so that a cut in the middle of the .filez is a cut in the deflate stream.
        var big = new byte[300_000];
        new Random(42).NextBytes(big);
        Write("usr/lib/big.bin", big);
        Text("usr/share/doc/readme", string.Concat(Enumerable.Repeat("compressible line\n", 2000)));
        Text("usr/share/empty-file", "");
        // Siblings that sort between a directory's name and its contents ('-' and '.' before '/').
        Text("usr/share/doc-extra", "x\n");
        Text("usr/share/doc.txt", "y\n");
        Text("usr/share/data/a", "linked content\n");
        Proc.Check("ln", Path.Join(root, "usr/share/data/a"), Path.Join(root, "usr/share/data/b"));
        Directory.CreateDirectory(Path.Join(root, "empty"));
        Text("home/user/notes.txt", "mine\n");
        LibC.LChown(Path.Join(root, "home/user/notes.txt"), 1000, 1000);
        LibC.LChown(Path.Join(root, "home/user"), 1000, 1000);
        Directory.CreateDirectory(Path.Join(root, "links"));
        File.CreateSymbolicLink(Path.Join(root, "links/rel"), "../usr/bin/tool");
        File.CreateSymbolicLink(Path.Join(root, "links/abs"), "/usr/lib/big.bin");
        LibC.SetXattr(Path.Join(root, "usr/bin/tool"), "user.note", Encoding.UTF8.GetBytes("hello xattr"));
        LibC.SetXattr(Path.Join(root, "usr/share/doc"), "user.dir", Encoding.UTF8.GetBytes("tagged"));
        foreach (var dir in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).Append(root))
            LibC.Chmod(dir, 0x1ED);
    }

    /// <summary>Commit 1 (no metadata), then commit 2 on top with the same tree, a body, a version and detached metadata.</summary>
    public static void InitAndCommit(string repo, string mode, string source)
    {
        Proc.Check("ostree", $"--repo={repo}", "init", $"--mode={mode}");
        Proc.Check("ostree", $"--repo={repo}", "commit", "--branch=test", "--subject=first", $"--timestamp={Timestamp1}", source);
        Proc.Check("ostree", $"--repo={repo}", "commit", "--branch=test", "--tree=ref=test", "--subject=second commit",
            "--body=body line 1\nbody line 2", $"--timestamp={Timestamp2}", "--add-metadata-string=version=1.2",
            "--add-detached-metadata-string=k=v", "--add-detached-metadata-string=other=value");
    }

    private static string Ostree(string repo, params string[] args) => Proc.Check("ostree", [$"--repo={repo}", .. args]);

    public static TheoryData<string> Modes => new() { "archive", "bare-user", "bare", "bare-user-only" };

    // ---------------------------------------------------------------- trees and content

    private static readonly Regex LsLine = new(
        @"^(?<t>[-dl])(?<mode>0[0-7]{4}) (?<uid>\d+) (?<gid>\d+) +(?<size>\d+) (?<ck>[0-9a-f]{64})(?: (?<meta>[0-9a-f]{64}))? \{ (?<x>.*) \} (?<path>/.*?)(?: -> (?<target>.*))?$");

    private static readonly Regex XattrItem = new(@"\(b'(?<n>[^']*)', \[byte (?<v>[^\]]*)\]\)");

    /// <summary>`ostree ls -R -C -X` as path -> one comparable line.</summary>
    private static Dictionary<string, string> OstreeLs(string repo, string rev)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Ostree(repo, "ls", "-R", "-C", "-X", rev).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var m = LsLine.Match(line);
            Assert.True(m.Success, $"cannot parse ostree ls line: {line}");
            var xattrText = m.Groups["x"].Value;
            var xattrs = XattrItem.Matches(xattrText).Select(x =>
                x.Groups["n"].Value + "=" + string.Concat(x.Groups["v"].Value.Split(", ").Select(b => b[2..].PadLeft(2, '0')))).ToList();
            Assert.True(xattrs.Count > 0 || xattrText == "@a(ayay) []", $"cannot parse xattrs: {xattrText}");
            var path = m.Groups["path"].Value;
            result[path] = Row(m.Groups["t"].Value[0], Convert.ToUInt32(m.Groups["mode"].Value, 8), uint.Parse(m.Groups["uid"].Value), uint.Parse(m.Groups["gid"].Value),
                long.Parse(m.Groups["size"].Value), m.Groups["ck"].Value, m.Groups["meta"].Success ? m.Groups["meta"].Value : null,
                m.Groups["target"].Success ? m.Groups["target"].Value : null, xattrs);
        }
        return result;
    }

    private static string Row(char type, uint mode, uint uid, uint gid, long size, string checksum, string? meta, string? target, IEnumerable<string> xattrs) =>
        $"{type}{Convert.ToString(mode, 8)} {uid}:{gid} {size} {checksum} {meta} -> {target} [{string.Join(";", xattrs)}]";

    private static IEnumerable<string> Xattrs(IReadOnlyList<KeyValuePair<string, byte[]>> xattrs) =>
        xattrs.Select(x => x.Key + "=" + Convert.ToHexStringLower(x.Value));

    private static Dictionary<string, string> OurLs(CommitTree tree)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var (rootTree, rootMeta) = tree.DirChecksums("");
        result["/"] = Row('d', tree.RootMeta.Mode & 0xFFF, tree.RootMeta.Uid, tree.RootMeta.Gid, 0, rootTree, rootMeta, null, Xattrs(tree.RootMeta.Xattrs));
        foreach (var e in tree.Entries)
        {
            if (e.Type == EntryType.Directory)
            {
                var (t, m) = tree.DirChecksums(e.Path);
                result["/" + e.Path] = Row('d', (uint)e.Mode, (uint)e.Uid, (uint)e.Gid, 0, t, m, null, Xattrs(e.Xattrs));
            }
            else
            {
                Assert.Contains(e.Type, new[] { EntryType.Regular, EntryType.Symlink });
                result["/" + e.Path] = Row(e.Type == EntryType.Symlink ? 'l' : '-', (uint)e.Mode, (uint)e.Uid, (uint)e.Gid, e.Size,
                    tree.ContentChecksum(e), null, e.LinkTarget, Xattrs(e.Xattrs));
            }
        }
        return result;
    }

    private static void AssertSameListing(Dictionary<string, string> expected, Dictionary<string, string> actual)
    {
        var diff = expected.Keys.Union(actual.Keys).Order(StringComparer.Ordinal)
            .Where(k => expected.GetValueOrDefault(k) != actual.GetValueOrDefault(k))
            .Select(k => $"{k}\n  ostree:    {expected.GetValueOrDefault(k)}\n  treechunk: {actual.GetValueOrDefault(k)}").ToList();
        Assert.True(diff.Count == 0, "listings differ:\n" + string.Join("\n", diff));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Commit_tree_matches_ostree_ls(string mode)
    {
        var repoPath = _repos[mode];
        using var tree = CommitTree.Open(OstreeRepo.Open(repoPath), "test");
        Assert.Equal(Ostree(repoPath, "rev-parse", "test").Trim(), tree.CommitChecksum);
        AssertSameListing(OstreeLs(repoPath, "test"), OurLs(tree));

        Assert.Equal(tree.Entries.Select(e => e.Path).Order(StringComparer.Ordinal), tree.Entries.Select(e => e.Path));
        Assert.All(tree.Entries, e => Assert.Equal(0, e.MTime));
        // Hardlinks do not survive into OSTree: two independent files sharing one object.
        var a = tree.Find("usr/share/data/a")!;
        var b = tree.Find("usr/share/data/b")!;
        Assert.Equal(EntryType.Regular, a.Type);
        Assert.Equal(EntryType.Regular, b.Type);
        Assert.Equal(tree.ContentChecksum(a), tree.ContentChecksum(b));

        // Spot checks of the facts the listing comparison relies on.
        Assert.Equal("../usr/bin/tool", tree.Find("links/rel")!.LinkTarget);
        Assert.Equal("/usr/lib/big.bin", tree.Find("links/abs")!.LinkTarget);
        Assert.Equal(0x180, tree.Find("etc/app.conf")!.Mode);
        Assert.Equal(EntryType.Directory, tree.Find("empty")!.Type);
        if (mode != "bare-user-only")
        {
            Assert.Equal(0x9ED, tree.Find("usr/bin/suid-tool")!.Mode);
            Assert.Equal((1000, 1000), (tree.Find("home/user")!.Uid, tree.Find("home/user")!.Gid));
            Assert.Equal((1000, 1000), (tree.Find("home/user/notes.txt")!.Uid, tree.Find("home/user/notes.txt")!.Gid));
            Assert.Equal("hello xattr", Encoding.UTF8.GetString(tree.Find("usr/bin/tool")!.GetXattr("user.note")!));
            Assert.Equal("tagged", Encoding.UTF8.GetString(tree.Find("usr/share/doc")!.GetXattr("user.dir")!));
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Content_equals_ostree_checkout(string mode)
    {
        var repoPath = _repos[mode];
        using var tmp = new TempDir();
        var checkout = tmp["co"];
        Ostree(repoPath, "checkout", "test", checkout);
        using var tree = CommitTree.Open(OstreeRepo.Open(repoPath), "test");
        int files = 0;
        foreach (var e in tree.Entries)
        {
            var full = Path.Join(checkout, e.Path);
            var st = LibC.LStat(full);
            switch (e.Type)
            {
                case EntryType.Regular:
                    Assert.True(st.IsRegular, e.Path);
                    using (var s = tree.OpenContent(e))
                    {
                        var ms = new MemoryStream();
                        s.CopyTo(ms);
                        Assert.True(File.ReadAllBytes(full).AsSpan().SequenceEqual(ms.ToArray()), $"content of {e.Path}");
                        Assert.Equal(e.Size, ms.Length);
                    }
                    files++;
                    break;
                case EntryType.Symlink:
                    Assert.True(st.IsSymlink, e.Path);
                    Assert.Equal(new FileInfo(full).LinkTarget, e.LinkTarget);
                    break;
                default:
                    Assert.True(st.IsDirectory, e.Path);
                    break;
            }
        }
        Assert.Equal(11, files);
        // Nothing in the checkout that the tree lacks.
        var onDisk = Directory.EnumerateFileSystemEntries(checkout, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(checkout, p)).Order(StringComparer.Ordinal);
        Assert.Equal(onDisk, tree.Entries.Select(e => e.Path));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Content_objects_expose_header_and_size(string mode)
    {
        var repo = OstreeRepo.Open(_repos[mode]);
        using var tree = CommitTree.Open(repo, "test");
        using (var link = repo.OpenContent(tree.ContentChecksum("links/abs")))
        {
            Assert.True(link.IsSymlink);
            Assert.Equal("/usr/lib/big.bin", link.Header.SymlinkTarget);
            Assert.Equal(0, link.Size);
            Assert.Equal(0, link.Content.Read(new byte[16]));
        }
        using (var big = repo.OpenContent(tree.ContentChecksum("usr/lib/big.bin")))
        {
            Assert.False(big.IsSymlink);
            Assert.Equal(300_000, big.Size);
            Assert.Equal(0x81A4u, big.Header.Mode);
            var expected = SHA256.HashData(File.ReadAllBytes(Path.Join(_repos.Source, "usr/lib/big.bin")));
            Assert.Equal(expected, SHA256.HashData(big.Content));
        }
        using (var empty = repo.OpenContent(tree.ContentChecksum("usr/share/empty-file")))
        {
            Assert.Equal(0, empty.Size);
            Assert.Equal(-1, empty.Content.ReadByte());
        }
        var checksum = tree.ContentChecksum("usr/bin/tool");
        Assert.True(repo.HasObject(checksum, ObjectType.File));
        Assert.False(repo.HasObject(new string('0', 64), ObjectType.File));
    }

    // ---------------------------------------------------------------- commits

    private sealed record LogEntry(string Checksum, string? Parent, DateTimeOffset Date, string? Version, string Subject, string Body);

    private static List<LogEntry> OstreeLog(string repo, string rev)
    {
        var result = new List<LogEntry>();
        var blocks = Regex.Split(Ostree(repo, "log", rev), @"^(?=commit )", RegexOptions.Multiline).Where(b => b.StartsWith("commit "));
        foreach (var block in blocks)
        {
            var lines = block.Split('\n');
            string? Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name + ":"))?[(name.Length + 1)..].Trim();
            var text = lines.Where(l => l.StartsWith("    ")).Select(l => l[4..]).ToList();
            result.Add(new LogEntry(lines[0]["commit ".Length..].Trim(), Field("Parent"),
                DateTimeOffset.ParseExact(Field("Date")!, "yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture), Field("Version"),
                text.FirstOrDefault() ?? "", string.Join("\n", text.Skip(1))));
        }
        return result;
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Commits_match_ostree_log_and_show(string mode)
    {
        var repoPath = _repos[mode];
        var repo = OstreeRepo.Open(repoPath);
        var log = OstreeLog(repoPath, "test");
        Assert.Equal(2, log.Count);
        string? checksum = repo.ResolveRev("test");
        foreach (var expected in log)
        {
            Assert.Equal(expected.Checksum, checksum);
            var c = repo.ReadCommit(checksum!);
            Assert.Equal(expected.Parent, c.Parent);
            Assert.Equal(expected.Date.ToUnixTimeSeconds(), (long)c.Timestamp);
            Assert.Equal(expected.Version, c.MetadataString("version"));
            Assert.Equal(expected.Subject, c.Subject);
            Assert.Equal(expected.Body, c.Body);
            checksum = c.Parent;
        }
        Assert.Null(checksum);

        var head = repo.ReadCommit(repo.ResolveRev("test"));
        Assert.Equal(DateTimeOffset.Parse(Timestamp2, CultureInfo.InvariantCulture).ToUnixTimeSeconds(), (long)head.Timestamp);
        Assert.Equal("body line 1\nbody line 2", head.Body);
        Assert.Equal("'1.2'", Ostree(repoPath, "show", "--print-metadata-key=version", "test").Trim());
        Assert.Equal(Ostree(repoPath, "rev-parse", "test^").Trim(), head.Parent);
        using var tree = CommitTree.Open(repo, "test");
        Assert.Equal((head.RootTree, head.RootMeta), tree.DirChecksums(""));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Detached_metadata_reads_back(string mode)
    {
        var repoPath = _repos[mode];
        var repo = OstreeRepo.Open(repoPath);
        var head = repo.ResolveRev("test");
        var meta = repo.ReadCommitMeta(head);
        Assert.NotNull(meta);
        var byKey = meta!.ToDictionary(m => m.Key, m => m.Value);
        Assert.Equal(new Variant("s", "v"), byKey["k"]);
        Assert.Equal("value", byKey["other"].Value);
        Assert.Equal("'v'", Ostree(repoPath, "show", "--print-detached-metadata-key=k", "test").Trim());
        Assert.Null(repo.ReadCommitMeta(repo.ReadCommit(head).Parent!));
    }

    [Fact]
    public void Cli_ls_log_refs_agree_with_ostree()
    {
        var repoPath = _repos["archive"];
        var json = JsonNode.Parse(TreechunkCli.Check("ostree", "ls", "--repo", repoPath, "test", "-R", "--json"))!.AsArray();
        var fromCli = json.ToDictionary(n => (string)n!["path"]!, n =>
        {
            char t = (string)n!["type"]! switch { "directory" => 'd', "symlink" => 'l', _ => '-' };
            var xattrs = n["xattrs"]!.AsObject().Select(x => x.Key + "=" + Convert.ToHexStringLower(Convert.FromBase64String((string)x.Value!)));
            return Row(t, Convert.ToUInt32((string)n["mode"]!, 8), (uint)n["uid"]!, (uint)n["gid"]!, (long)n["size"]!, (string)n["checksum"]!,
                (string?)n["meta_checksum"], (string?)n["target"], xattrs);
        }, StringComparer.Ordinal);
        AssertSameListing(OstreeLs(repoPath, "test"), fromCli);

        // Text form: the same lines ostree ls -C prints, xattrs aside.
        var text = TreechunkCli.Check("ostree", "ls", "--repo", repoPath, "test", "/usr");
        var expectedText = Ostree(repoPath, "ls", "-C", "test", "/usr");
        Assert.Equal(expectedText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal),
            text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("/usr/bin/tool-missing", TreechunkCli.Fails(2, "ostree", "ls", "--repo", repoPath, "test", "/usr/bin/tool-missing"));

        var log = JsonNode.Parse(TreechunkCli.Check("ostree", "log", "--repo", repoPath, "test", "--json"))!.AsArray();
        var expected = OstreeLog(repoPath, "test");
        Assert.Equal(expected.Select(e => e.Checksum), log.Select(n => (string)n!["checksum"]!));
        Assert.Equal(expected.Select(e => e.Parent), log.Select(n => (string?)n!["parent"]));
        Assert.Equal(expected.Select(e => e.Date.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")), log.Select(n => (string)n!["timestamp"]!));
        Assert.Equal(expected.Select(e => e.Version), log.Select(n => (string?)n!["version"]));
        Assert.Equal(expected.Select(e => e.Subject), log.Select(n => (string)n!["subject"]!));
        Assert.Equal(expected.Select(e => e.Body), log.Select(n => (string)n!["body"]!));
        var textLog = TreechunkCli.Check("ostree", "log", "--repo", repoPath, "test");
        Assert.Contains($"Date:    {Timestamp2}", textLog);
        Assert.Contains("Version: 1.2", textLog);

        var refs = TreechunkCli.Check("ostree", "refs", "--repo", repoPath).Trim();
        Assert.Equal($"test {Ostree(repoPath, "rev-parse", "test").Trim()}", refs);
        var refsJson = JsonNode.Parse(TreechunkCli.Check("ostree", "refs", "--repo", repoPath, "--json"))!.AsArray();
        Assert.Equal("test", (string)refsJson.Single()!["ref"]!);
    }

    // ---------------------------------------------------------------- fsck and damage

    [Theory]
    [MemberData(nameof(Modes))]
    public void Fsck_passes_on_a_clean_repo(string mode)
    {
        var repoPath = _repos[mode];
        Ostree(repoPath, "fsck");
        var report = OstreeFsck.Check(OstreeRepo.Open(repoPath), null, null);
        Assert.Empty(report.Problems);
        Assert.Equal(2, report.Commits);
        var output = TreechunkCli.Check("ostree", "fsck", "--repo", repoPath);
        Assert.StartsWith("ok:", output);
        Assert.Contains("2 commits", output);
    }

    /// <summary>A fresh copy of a repo mode with the fixture's commits, for tests that damage it.</summary>
    private string Fresh(TempDir tmp, string mode)
    {
        var repo = tmp["repo"];
        InitAndCommit(repo, mode, _repos.Source);
        return repo;
    }

    private static void Flip(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        if (offset < 0) offset += fs.Length;
        fs.Position = offset;
        int b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ 0x5A));
    }

    private static void Drain(Stream s)
    {
        var buffer = new byte[8192];
        while (s.Read(buffer) > 0) { }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Fsck_names_every_corrupt_object(string mode)
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, mode);
        var repo = OstreeRepo.Open(repoPath);
        string dirtree, file, missing;
        using (var tree = CommitTree.Open(repo, "test"))
        {
            dirtree = tree.DirChecksums("usr/share/doc").Tree;
            file = tree.ContentChecksum("usr/lib/big.bin");
            missing = tree.ContentChecksum("etc/app.conf");
        }
        Flip(repo.ObjectPath(dirtree, ObjectType.DirTree), 0);
        Flip(repo.ObjectPath(file, ObjectType.File), -100);
        File.Delete(repo.ObjectPath(missing, ObjectType.File));

        var problems = OstreeFsck.Run(repo, "test", null);
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.Checksum == dirtree && p.Type == ObjectType.DirTree && p.Problem == ObjectProblem.Corrupt && p.Path == "usr/share/doc");
        Assert.Contains(problems, p => p.Checksum == file && p.Type == ObjectType.File && p.Problem == ObjectProblem.Corrupt && p.Path == "usr/lib/big.bin");
        Assert.Contains(problems, p => p.Checksum == missing && p.Type == ObjectType.File && p.Problem == ObjectProblem.Missing);

        var r = TreechunkCli.Run("ostree", "fsck", "--repo", repoPath);
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.StartsWith($"corrupt dirtree {dirtree}"));
        Assert.Contains(lines, l => l.StartsWith($"corrupt file {file}"));
        Assert.Contains(lines, l => l.StartsWith($"missing file {missing}"));
        Assert.Contains("3 missing or corrupt objects", TreechunkCli.Fails(1, "ostree", "fsck", "--repo", repoPath));
        var json = JsonNode.Parse(TreechunkCli.Run("ostree", "fsck", "--repo", repoPath, "test", "--json").Stdout)!;
        Assert.False((bool)json["ok"]!);
        Assert.Equal(3, json["problems"]!.AsArray().Count);
        // ostree agrees that the repo is damaged.
        Assert.NotEqual(0, Proc.Run("ostree", [$"--repo={repoPath}", "fsck"]).ExitCode);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Corrupt_dirtree_is_a_clear_error(string mode)
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, mode);
        var repo = OstreeRepo.Open(repoPath);
        string dirtree;
        using (var tree = CommitTree.Open(repo, "test")) dirtree = tree.DirChecksums("usr/bin").Tree;
        Flip(repo.ObjectPath(dirtree, ObjectType.DirTree), 3);

        var e = Assert.Throws<OstreeObjectException>(() => CommitTree.Open(repo, "test"));
        Assert.Equal((dirtree, ObjectType.DirTree, ObjectProblem.Corrupt), (e.Checksum, e.Type, e.Problem));
        Assert.Contains($"corrupt object {dirtree}.dirtree", e.Message);
        Assert.Contains($"corrupt object {dirtree}.dirtree", TreechunkCli.Fails(1, "ostree", "ls", "--repo", repoPath, "test"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Corrupt_file_content_fails_when_read(string mode)
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, mode);
        var repo = OstreeRepo.Open(repoPath);
        using var tree = CommitTree.Open(repo, "test");
        var checksum = tree.ContentChecksum("usr/share/doc/readme");
        // For .filez this lands in the deflate stream: either bad data or wrong content, both must be caught.
        Flip(repo.ObjectPath(checksum, ObjectType.File), -20);
        using var s = tree.OpenContent(tree.Find("usr/share/doc/readme")!);
        var e = Assert.Throws<OstreeObjectException>(() => Drain(s));
        Assert.Equal(checksum, e.Checksum);
        Assert.Contains($"corrupt object {checksum}.{(mode == "archive" ? "filez" : "file")}", e.Message);
    }

    [Theory]
    [InlineData(30)]         // inside the header variant
    [InlineData(150_000)]    // inside the deflate stream
    [InlineData(-1)]         // just the last byte of the deflate stream
    public void Truncated_filez_is_a_clear_error(int keep)
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, "archive");
        var repo = OstreeRepo.Open(repoPath);
        using var tree = CommitTree.Open(repo, "test");
        var checksum = tree.ContentChecksum("usr/lib/big.bin");
        var path = repo.ObjectPath(checksum, ObjectType.File);
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite)) fs.SetLength(keep < 0 ? fs.Length + keep : keep);

        var e = Assert.ThrowsAny<TreechunkException>(() =>
        {
            using var obj = repo.OpenContent(checksum);
            Drain(obj.Content);
        });
        Assert.Contains($"corrupt object {checksum}.filez", e.Message);
        var line = TreechunkCli.Fails(1, "ostree", "fsck", "--repo", repoPath);
        Assert.Contains("1 missing or corrupt object", line);
        // Reading the tree's metadata still fails clearly when the header itself is cut.
        if (keep == 30) Assert.Contains(checksum, TreechunkCli.Fails(1, "ostree", "ls", "--repo", repoPath, "test"));
    }

    [Fact]
    public void Garbage_in_filez_deflate_stream_is_a_clear_error()
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, "archive");
        var repo = OstreeRepo.Open(repoPath);
        using var tree = CommitTree.Open(repo, "test");
        var checksum = tree.ContentChecksum("usr/share/doc/readme");
        var path = repo.ObjectPath(checksum, ObjectType.File);
        var bytes = File.ReadAllBytes(path);
        int headerEnd = 8 + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
        for (int i = headerEnd; i < bytes.Length; i++) bytes[i] = 0xFF;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<OstreeObjectException>(() =>
        {
            using var obj = repo.OpenContent(checksum);
            Drain(obj.Content);
        });
        Assert.Contains("compressed", e.Message);
    }

    [Fact]
    public void Invalid_gvariant_names_the_object()
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, "archive");
        var repo = OstreeRepo.Open(repoPath);
        // Named after its own hash, so only the parser can object.
        var garbage = new byte[] { 0x01, 0x02, 0x03 };
        var checksum = Convert.ToHexStringLower(SHA256.HashData(garbage));
        var path = repo.ObjectPath(checksum, ObjectType.Commit);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, garbage);
        File.WriteAllText(Path.Join(repoPath, "refs/heads/bad"), checksum + "\n");

        var e = Assert.Throws<OstreeObjectException>(() => repo.ReadCommit(checksum));
        Assert.Contains($"{checksum}.commit", e.Message);
        Assert.Contains("GVariant", e.Message);
        var line = TreechunkCli.Fails(1, "ostree", "log", "--repo", repoPath, "bad");
        Assert.Contains($"{checksum}.commit", line);
        Assert.Contains("GVariant", line);
        var fsck = TreechunkCli.Run("ostree", "fsck", "--repo", repoPath);
        Assert.Equal(1, fsck.ExitCode);
        Assert.StartsWith($"corrupt commit {checksum}", fsck.Stdout.Trim());
    }

    [Fact]
    public void Bare_user_object_without_its_metadata_xattr_is_corrupt()
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, "bare-user");
        var repo = OstreeRepo.Open(repoPath);
        string checksum;
        using (var tree = CommitTree.Open(repo, "test")) checksum = tree.ContentChecksum("etc/app.conf");
        // Replace the object by a copy without xattrs.
        var path = repo.ObjectPath(checksum, ObjectType.File);
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<OstreeObjectException>(() => repo.OpenContent(checksum));
        Assert.Contains("user.ostreemeta", e.Message);
    }

    [Fact]
    public void Missing_parent_ends_the_log_and_is_not_a_problem()
    {
        using var tmp = new TempDir();
        var repoPath = Fresh(tmp, "archive");
        var repo = OstreeRepo.Open(repoPath);
        var parent = repo.ReadCommit(repo.ResolveRev("test")).Parent!;
        File.Delete(repo.ObjectPath(parent, ObjectType.Commit));
        var log = TreechunkCli.Check("ostree", "log", "--repo", repoPath, "test");
        Assert.Contains("not in the repository", log);
        Assert.Equal(1, OstreeFsck.Check(repo, null, null).Commits);
        Assert.Empty(OstreeFsck.Run(repo, null, null));
    }

    [Fact]
    public void Bad_repositories_and_refs_are_one_line_errors()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["noconfig"]);
        Assert.Throws<TreechunkException>(() => OstreeRepo.Open(tmp["noconfig"]));
        Assert.Contains("no config", TreechunkCli.Fails(2, "ostree", "refs", "--repo", tmp["noconfig"]));
        Assert.Contains("no-such", TreechunkCli.Fails(2, "ostree", "log", "--repo", tmp["no-such"], "test"));

        var weird = tmp["weird"];
        Proc.Check("ostree", $"--repo={weird}", "init", "--mode=archive");
        File.WriteAllText(Path.Join(weird, "config"), "[core]\nrepo_version=1\nmode=sideways\n");
        Assert.Contains("sideways", Assert.Throws<TreechunkException>(() => OstreeRepo.Open(weird)).Message);
        Assert.Contains("sideways", TreechunkCli.Fails(2, "ostree", "ls", "--repo", weird, "test"));

        var repoPath = _repos["archive"];
        Assert.Contains("nope", Assert.Throws<TreechunkException>(() => CommitTree.Open(OstreeRepo.Open(repoPath), "nope")).Message);
        Assert.Contains("no ref 'nope'", TreechunkCli.Fails(2, "ostree", "ls", "--repo", repoPath, "nope"));
        Assert.Contains("no ref 'nope'", TreechunkCli.Fails(2, "ostree", "fsck", "--repo", repoPath, "nope"));
        var absent = new string('a', 64);
        Assert.Contains($"missing object {absent}.commit", TreechunkCli.Fails(2, "ostree", "log", "--repo", repoPath, absent));
    }
}
