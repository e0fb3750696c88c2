using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Ostree;
using Treechunk.Posix;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.Ostree;

/// <summary>
/// Writing OSTree repositories, judged by the real ostree: fsck, checkout, and above all the
/// same commit checksum as `ostree commit` for the same tree and commit fields.
/// </summary>
public class OstreeWriteTests
{
    private const string Ts = "1700000000";

    private static string Ostree(params string[] args)
    {
        Tools.Require("ostree");
        return Proc.Check("ostree", args);
    }

    /// <summary>Every metadata case OSTree keeps, and nothing it cannot store (no device nodes).</summary>
    private static void BuildTree(string root)
    {
        Directory.CreateDirectory(root);
        void Write(string rel, string text, int mode = 0x1A4)
        {
            var full = Path.Join(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            LibC.Chmod(full, mode);
        }
        Write("usr/bin/tool", "#!/bin/sh\necho tool\n", 0x1ED);          // 0755
        Write("usr/bin/suid", "suid", 0x9ED);                             // 04755
        Write("usr/bin/sgid", "sgid", 0x5ED);                             // 02755
        Write("etc/secret", "key=value\n", 0x180);                         // 0600
        Write("etc/odd-mode", "odd", 0x1C7);                              // 0707: bare-user drops others' write
        Write("home/user/notes.txt", "mine\n");
        LibC.LChown(Path.Join(root, "home/user/notes.txt"), 1000, 1000);
        LibC.LChown(Path.Join(root, "home/user"), 1000, 1000);
        Directory.CreateDirectory(Path.Join(root, "tmp"));
        LibC.Chmod(Path.Join(root, "tmp"), 0x3FF);                        // 01777
        Directory.CreateDirectory(Path.Join(root, "var/empty"));
        LibC.Chmod(Path.Join(root, "var/empty"), 0x1C0);                  // 0700
        Directory.CreateDirectory(Path.Join(root, "srv/a/b/c/empty"));
        File.CreateSymbolicLink(Path.Join(root, "usr/bin/tool-link"), "tool");
        File.CreateSymbolicLink(Path.Join(root, "etc/abs-link"), "/usr/bin/tool");
        File.CreateSymbolicLink(Path.Join(root, "etc/dangling"), "../nowhere");
        Write("usr/share/data/a", "linked content\n");
        Proc.Check("ln", Path.Join(root, "usr/share/data/a"), Path.Join(root, "usr/share/data/b"));
        Proc.Check("ln", Path.Join(root, "usr/share/data/a"), Path.Join(root, "usr/bin/c-link"));
        Write("usr/share/same-content", "linked content\n");              // same object as the hardlinks
        LibC.SetXattr(Path.Join(root, "usr/bin/tool"), "user.note", Encoding.UTF8.GetBytes("hello xattr"));
        LibC.SetXattr(Path.Join(root, "usr/bin/tool"), "user.a-first", [0, 1, 2, 255]);
        LibC.SetXattr(Path.Join(root, "home/user"), "user.dir", Encoding.UTF8.GetBytes("on a directory"));
        Write(string.Join('/', Enumerable.Range(0, 20).Select(i => $"deep-{i:00}")) + "/" + new string('f', 200), "deep\n");
        Write("usr/share/unicode/naïve-файл-日本.txt", "unicode name\n");
        Write("usr/share/empty-file", "");
        // Bigger than the copy buffer and compressible, so deflate runs over several blocks.
        var big = new StringBuilder();
        for (int i = 0; i < 60_000; i++) big.Append($"line {i} of a larger file {i * 7919 % 1000}\n");
        Write("usr/lib/big.txt", big.ToString());
        var random = new byte[300_000];
        new Random(42).NextBytes(random);
        File.WriteAllBytes(Path.Join(root, "usr/lib/random.bin"), random);
    }

    /// <summary>
    /// Type, mode, owner, size, content, symlink target and xattrs of every path. Checkouts do not
    /// keep hardlink groups (and may add some), so a hardlink counts as the regular file it is.
    /// </summary>
    private static List<string> Snapshot(string root, bool owners = true, bool xattrs = true, Func<int, int>? fileModes = null)
    {
        using var tree = DirectoryTree.Open(root);
        var lines = new List<string>();
        foreach (var e in tree.Entries)
        {
            var data = e.Type == EntryType.Hardlink ? tree.Find(e.LinkTarget!)! : e;
            string content = "";
            if (data.Type == EntryType.Regular)
            {
                using var s = tree.OpenContent(data);
                content = Convert.ToHexStringLower(SHA256.HashData(s))[..16];
            }
            var type = e.Type == EntryType.Hardlink ? EntryType.Regular : e.Type;
            var mode = fileModes == null || type == EntryType.Symlink ? e.Mode
                : type == EntryType.Directory ? e.Mode & 0x1FF : fileModes(e.Mode);
            var x = xattrs ? string.Join(";", e.Xattrs.Where(kv => kv.Key != "security.selinux").Select(kv => kv.Key + "=" + Convert.ToHexStringLower(kv.Value))) : "";
            lines.Add($"{e.Path} {type} {Convert.ToString(mode, 8)} {(owners ? $"{e.Uid}:{e.Gid}" : "")} {data.Size} {content} {(e.Type == EntryType.Symlink ? e.LinkTarget : "")} [{x}]");
        }
        return lines;
    }

    private static string InitBoth(TempDir tmp, string mode, out string theirs)
    {
        theirs = tmp[$"ostree-{mode}"];
        Ostree("init", $"--repo={theirs}", $"--mode={mode}");
        var ours = tmp[$"treechunk-{mode}"];
        TreechunkCli.Check("ostree", "init", "--repo", ours, "--mode", mode);
        return ours;
    }

    private static string[] CommitArgs(string repo, string dir, params string[] extra) =>
        ["ostree", "commit", "--repo", repo, "--branch=b", "--subject=s", $"--timestamp=@{Ts}", "--add-metadata-string=version=1", .. extra, dir];

    // ---------------------------------------------------------------- init

    [Theory]
    [InlineData("archive")]
    [InlineData("bare-user")]
    [InlineData("bare")]
    public void Init_writes_what_ostree_init_writes(string mode)
    {
        using var tmp = new TempDir("otinit");
        var ours = InitBoth(tmp, mode, out var theirs);
        Assert.Equal(File.ReadAllBytes(Path.Join(theirs, "config")), File.ReadAllBytes(Path.Join(ours, "config")));
        static List<string> Listing(string repo) => Directory.EnumerateFileSystemEntries(repo, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(repo, p) + (Directory.Exists(p) ? "/" : "")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Listing(theirs), Listing(ours));
        // ostree accepts the repository and finds nothing wrong with it.
        Ostree($"--repo={ours}", "fsck");
        Assert.Equal("", Ostree($"--repo={ours}", "refs"));
    }

    [Fact]
    public void Init_refuses_a_non_empty_directory_and_keeps_an_existing_repository()
    {
        using var tmp = new TempDir("otinit");
        Directory.CreateDirectory(tmp["data"]);
        File.WriteAllText(tmp["data/precious"], "keep");
        Assert.Contains("not empty", TreechunkCli.Fails(2, "ostree", "init", "--repo", tmp["data"], "--mode", "archive"));
        Assert.Equal(["precious"], Directory.EnumerateFileSystemEntries(tmp["data"]).Select(Path.GetFileName));

        TreechunkCli.Check("ostree", "init", "--repo", tmp["repo"], "--mode", "archive");
        TreechunkCli.Check("ostree", "init", "--repo", tmp["repo"], "--mode", "archive");
        Assert.Contains("already an OSTree repository", TreechunkCli.Fails(2, "ostree", "init", "--repo", tmp["repo"], "--mode", "bare-user"));
        Assert.Contains("--mode", TreechunkCli.Fails(2, "ostree", "init", "--repo", tmp["r2"], "--mode", "zip"));
        Assert.Equal(RepoMode.Archive, OstreeRepo.Open(tmp["repo"]).Mode);
    }

    // ---------------------------------------------------------------- the same commit as ostree

    [Theory]
    [InlineData("archive")]
    [InlineData("bare-user")]
    [InlineData("bare")]
    public void Commit_gives_the_same_checksums_as_ostree_commit(string mode)
    {
        using var tmp = new TempDir("otsame");
        BuildTree(tmp["tree"]);
        var ours = InitBoth(tmp, mode, out var theirs);
        var expected = Ostree(["--repo=" + theirs, "commit", "--branch=b", "--subject=s", $"--timestamp=@{Ts}", "--add-metadata-string=version=1", tmp["tree"]]).Trim();
        var actual = TreechunkCli.Check(CommitArgs(ours, tmp["tree"])).Trim();
        Assert.Equal(expected, actual);
        // Every content, dirtree and dirmeta checksum too, not only the commit's.
        Assert.Equal(Ostree($"--repo={theirs}", "ls", "-R", "-C", "-X", "b"), Ostree($"--repo={ours}", "ls", "-R", "-C", "-X", "b"));
        Assert.Equal(ObjectNames(theirs), ObjectNames(ours));
        Assert.Equal(Ostree($"--repo={theirs}", "show", "--raw", "b"), Ostree($"--repo={ours}", "show", "--raw", "b"));
        Assert.Contains("no errors found", Ostree($"--repo={ours}", "fsck"));
        Assert.Equal("['b']", Ostree($"--repo={ours}", "show", "b", "--print-metadata-key=ostree.ref-binding").Trim());
    }

    private static List<string> ObjectNames(string repo) =>
        Directory.EnumerateFiles(Path.Join(repo, "objects"), "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(repo, p)).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public void Bare_user_objects_are_stored_as_ostree_stores_them()
    {
        using var tmp = new TempDir("otbu");
        BuildTree(tmp["tree"]);
        var ours = InitBoth(tmp, "bare-user", out var theirs);
        Ostree("--repo=" + theirs, "commit", "--branch=b", $"--timestamp=@{Ts}", tmp["tree"]);
        TreechunkCli.Check("ostree", "commit", "--repo", ours, "--branch=b", $"--timestamp=@{Ts}", tmp["tree"]);
        foreach (var name in ObjectNames(theirs).Where(n => n.EndsWith(".file")))
        {
            string a = Path.Join(theirs, name), b = Path.Join(ours, name);
            var (sa, sb) = (LibC.LStat(a), LibC.LStat(b));
            Assert.True(sb.IsRegular, name);
            Assert.Equal(Convert.ToString(sa.Mode, 8), Convert.ToString(sb.Mode, 8));
            Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
            Assert.Equal(LibC.ListXattrs(a).Select(x => x.Key + "=" + Convert.ToHexString(x.Value)), LibC.ListXattrs(b).Select(x => x.Key + "=" + Convert.ToHexString(x.Value)));
        }
    }

    [Fact]
    public void Metadata_keeps_the_order_and_repeats_ostree_keeps()
    {
        using var tmp = new TempDir("otmeta");
        BuildTree(tmp["tree"]);
        var ours = InitBoth(tmp, "archive", out var theirs);
        string[] meta = ["--add-metadata-string=zz=1", "--add-metadata-string=aa=2", "--add-metadata-string=version=3",
            "--add-metadata-string=aa=again", "--add-metadata-string=ostree.ref-binding=mine", "--add-metadata-string=empty="];
        var expected = Ostree(["--repo=" + theirs, "commit", "--branch=os/x86_64/stable", "--body=line one\nline two", $"--timestamp=@{Ts}", .. meta, tmp["tree"]]).Trim();
        var actual = TreechunkCli.Check(["ostree", "commit", "--repo", ours, "--branch=os/x86_64/stable", "--body=line one\nline two", $"--timestamp=@{Ts}", .. meta, tmp["tree"]]).Trim();
        Assert.Equal(expected, actual);
        Assert.Equal(Ostree($"--repo={theirs}", "show", "--raw", "os/x86_64/stable"), Ostree($"--repo={ours}", "show", "--raw", "os/x86_64/stable"));
    }

    [Fact]
    public void Iso_timestamp_and_source_date_epoch_give_the_same_commit_as_unix_seconds()
    {
        using var tmp = new TempDir("otts");
        BuildTree(tmp["tree"]);
        string Commit(string repo, IDictionary<string, string>? env, params string[] extra)
        {
            TreechunkCli.Check("ostree", "init", "--repo", repo, "--mode", "archive");
            var args = new[] { "ostree", "commit", "--repo", repo, "--branch=b", "--subject=s" }.Concat(extra).Append(tmp["tree"]).ToArray();
            var r = env == null ? TreechunkCli.Run(args) : TreechunkCli.RunWithEnv(env, args);
            Assert.True(r.ExitCode == 0, r.ToString());
            return r.Stdout.Trim();
        }
        var unix = Commit(tmp["r1"], null, $"--timestamp={Ts}");
        Assert.Equal(unix, Commit(tmp["r2"], null, "--timestamp=2023-11-14T22:13:20Z"));
        Assert.Equal(unix, Commit(tmp["r3"], new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = Ts }));
        Assert.Equal(unix, Commit(tmp["r4"], null, $"--timestamp=@{Ts}"));
        Assert.Contains("--timestamp", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["r1"], "--branch=b", "--timestamp=yesterday", tmp["tree"]));
    }

    // ---------------------------------------------------------------- fsck and checkout

    [Theory]
    [InlineData("archive")]
    [InlineData("bare-user")]
    public void Commit_passes_fsck_and_checks_out_equal_to_the_source(string mode)
    {
        using var tmp = new TempDir("otco");
        BuildTree(tmp["tree"]);
        var repo = tmp["repo"];
        TreechunkCli.Check("ostree", "init", "--repo", repo, "--mode", mode);
        TreechunkCli.Check("ostree", "commit", "--repo", repo, "--branch=os/main", tmp["tree"]);
        Assert.Contains("no errors found", Ostree($"--repo={repo}", "fsck"));

        // As root a checkout restores owners, modes and xattrs from either mode.
        Ostree($"--repo={repo}", "checkout", "os/main", tmp["out"]);
        TreeSnapshot.AssertEqual(Snapshot(tmp["tree"]), Snapshot(tmp["out"]));

        // A user-mode checkout (what an unprivileged user gets) keeps content and modes without
        // setuid/setgid/sticky; from bare-user it hardlinks the objects, whose modes are
        // (mode & 0775) | 0400, as ostree makes them.
        Ostree($"--repo={repo}", "checkout", "-U", "os/main", tmp["out-user"]);
        Func<int, int> userModes = m => m & 0x1FF;
        Func<int, int> objectModes = mode == "bare-user" ? m => (m & 0x1FD) | 0x100 : userModes;
        TreeSnapshot.AssertEqual(Snapshot(tmp["tree"], owners: false, xattrs: false, fileModes: objectModes),
            Snapshot(tmp["out-user"], owners: false, xattrs: false, fileModes: userModes));
    }

    [Fact]
    public void Committing_the_same_tree_twice_gives_the_same_checksum()
    {
        using var tmp = new TempDir("ottwice");
        BuildTree(tmp["tree"]);
        var sums = new List<string>();
        foreach (var name in new[] { "r1", "r2" })
        {
            TreechunkCli.Check("ostree", "init", "--repo", tmp[name], "--mode", "archive");
            sums.Add(TreechunkCli.Check(CommitArgs(tmp[name], tmp["tree"])).Trim());
        }
        Assert.Equal(sums[0], sums[1]);
        // Through the API, with a single writer thread, the same again.
        using var tree = DirectoryTree.Open(tmp["tree"]);
        var repo = OstreeRepo.Init(tmp["r3"], RepoMode.Archive);
        var api = CommitWriter.Commit(repo, tree, new CommitOptions
        {
            Ref = "b", Subject = "s", Timestamp = ulong.Parse(Ts), Parallelism = 1,
            Metadata = [KeyValuePair.Create("version", new Variant("s", "1"))],
        });
        Assert.Equal(sums[0], api);
    }

    [Theory]
    [InlineData(RepoMode.Archive)]
    [InlineData(RepoMode.BareUser)]
    [InlineData(RepoMode.Bare)]
    public void Named_temp_files_where_O_TMPFILE_is_missing_give_the_same_repository(RepoMode mode)
    {
        using var tmp = new TempDir("otnamed");
        BuildTree(tmp["tree"]);
        using var tree = DirectoryTree.Open(tmp["tree"]);
        var options = new CommitOptions { Ref = "b", Timestamp = ulong.Parse(Ts) };
        var normal = CommitWriter.Commit(OstreeRepo.Init(tmp["r1"], mode), tree, options);
        var repo = OstreeRepo.Init(tmp["r2"], mode);
        repo.NamedTempFiles = true;
        Assert.Equal(normal, CommitWriter.Commit(repo, tree, options));
        Assert.Equal(ObjectNames(tmp["r1"]), ObjectNames(tmp["r2"]));
        Assert.Contains("no errors found", Ostree($"--repo={tmp["r2"]}", "fsck"));
        Assert.Equal(["cache"], Directory.EnumerateFileSystemEntries(tmp["r2/tmp"]).Select(Path.GetFileName));
    }

    [Fact]
    public void A_commit_on_an_existing_ref_records_the_parent_and_dedups_objects()
    {
        using var tmp = new TempDir("otparent");
        BuildTree(tmp["tree"]);
        var repo = tmp["repo"];
        TreechunkCli.Check("ostree", "init", "--repo", repo, "--mode", "archive");
        // Not a ref like "b": ostree rev-parse reads a hex-looking name as a partial checksum
        // first, and these commits (timestamped now) may start with it.
        var first = TreechunkCli.Check("ostree", "commit", "--repo", repo, "--branch=os/main", "--subject=one", tmp["tree"]).Trim();
        var objectsAfterFirst = ObjectNames(repo).Count;
        File.WriteAllText(tmp["tree/etc/new-file"], "new\n");
        var json = JsonNode.Parse(TreechunkCli.Check("ostree", "commit", "--repo", repo, "--branch=os/main", "--subject=two", tmp["tree"], "--json"))!;
        var second = (string)json["commit"]!;
        Assert.Equal(first, (string?)json["parent"]);
        Assert.Equal("os/main", (string?)json["ref"]);
        Assert.Equal(second, Ostree($"--repo={repo}", "rev-parse", "os/main").Trim());
        Assert.Equal(first, Ostree($"--repo={repo}", "rev-parse", "os/main^").Trim());
        // New: the file, the etc dirtree, the root dirtree, the commit. Everything else is shared.
        Assert.Equal(objectsAfterFirst + 4, ObjectNames(repo).Count);
        Assert.Contains("no errors found", Ostree($"--repo={repo}", "fsck"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Join(repo, "tmp")).Where(p => !p.EndsWith("/cache")));
    }

    // ---------------------------------------------------------------- refusals

    [Fact]
    public void Device_nodes_are_refused_or_skipped_with_a_warning()
    {
        using var tmp = new TempDir("otdev");
        BuildTree(tmp["tree"]);
        Directory.CreateDirectory(tmp["tree/dev"]);
        var ours = InitBoth(tmp, "archive", out var theirs);
        var withoutNodes = Ostree(["--repo=" + theirs, "commit", "--branch=b", "--subject=s", $"--timestamp=@{Ts}", "--add-metadata-string=version=1", tmp["tree"]]).Trim();
        LibC.MkNod(tmp["tree/dev/null"], LibC.EntryKind.Char, 0x1B6, 1, 3);
        LibC.MkNod(tmp["tree/dev/fifo"], LibC.EntryKind.Fifo, 0x180, 0, 0);
        Assert.Contains("Not a regular file or symlink", Proc.Run("ostree", ["--repo=" + theirs, "commit", "--branch=c", tmp["tree"]]).Stderr);

        var error = TreechunkCli.Fails(2, CommitArgs(ours, tmp["tree"]));
        Assert.Contains("dev/fifo", error);
        Assert.Contains("--skip-special-files", error);
        Assert.Empty(Directory.EnumerateFiles(Path.Join(ours, "objects"), "*", SearchOption.AllDirectories));

        var r = TreechunkCli.Run(CommitArgs(ours, tmp["tree"], "--skip-special-files"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("warning: skipping character device dev/null", r.Stderr);
        Assert.Contains("warning: skipping fifo dev/fifo", r.Stderr);
        // Skipping gives exactly the commit of the tree without those entries.
        Assert.Equal(withoutNodes, r.Stdout.Trim());
        Assert.Contains("no errors found", Ostree($"--repo={ours}", "fsck"));
    }

    [Fact]
    public void Committing_into_something_that_is_not_a_repository_fails_clearly()
    {
        using var tmp = new TempDir("otnorepo");
        BuildTree(tmp["tree"]);
        Directory.CreateDirectory(tmp["repo/objects"]);
        Assert.Contains("not an OSTree repository", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["repo"], "--branch=b", tmp["tree"]));
        Assert.Contains("no such OSTree repository", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["missing"], "--branch=b", tmp["tree"]));
        TreechunkCli.Check("ostree", "init", "--repo", tmp["ok"], "--mode", "archive");
        Assert.Contains("invalid ref name", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["ok"], "--branch=../x", tmp["tree"]));
        Assert.Contains("not both", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["ok"], "--branch=b", "--tree=dir=" + tmp["tree"], tmp["tree"]));
        Assert.Contains("dir=PATH", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["ok"], "--branch=b", "--tree=tar=x.tar"));
        Assert.Contains("KEY=VALUE", TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["ok"], "--branch=b", "--add-metadata-string=novalue", tmp["tree"]));
        Assert.Contains(tmp["nodir"], TreechunkCli.Fails(2, "ostree", "commit", "--repo", tmp["ok"], "--branch=b", tmp["nodir"]));
        Assert.Equal("", Ostree($"--repo={tmp["ok"]}", "refs"));
    }

    [Fact]
    public void Tree_option_is_the_same_as_the_directory_argument()
    {
        using var tmp = new TempDir("ottree");
        BuildTree(tmp["tree"]);
        TreechunkCli.Check("ostree", "init", "--repo", tmp["r1"], "--mode", "archive");
        TreechunkCli.Check("ostree", "init", "--repo", tmp["r2"], "--mode", "archive");
        var a = TreechunkCli.Check("ostree", "commit", "--repo", tmp["r1"], "-b", "b", $"--timestamp={Ts}", tmp["tree"]).Trim();
        var b = TreechunkCli.Check("ostree", "commit", "--repo", tmp["r2"], "-b", "b", $"--timestamp={Ts}", $"--tree=dir={tmp["tree"]}").Trim();
        Assert.Equal(a, b);
    }

    [Fact]
    public void Commit_waits_for_an_exclusive_repository_lock_and_then_gives_up()
    {
        using var tmp = new TempDir("otlock");
        var repo = OstreeRepo.Init(tmp["repo"], RepoMode.Archive);
        using (repo.LockShared()) using (repo.LockShared()) { } // shared: ostree commits run side by side
        // An exclusive holder (ostree prune takes one): record locks conflict with our OFD lock.
        var psi = new System.Diagnostics.ProcessStartInfo("python3", ["-c",
            $"import fcntl, sys, time\nf = open('{tmp["repo/.lock"]}', 'a')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()"])
        { RedirectStandardOutput = true, RedirectStandardInput = true };
        using var holder = System.Diagnostics.Process.Start(psi)!;
        try
        {
            Assert.Equal("locked", holder.StandardOutput.ReadLine());
            var e = Assert.Throws<TreechunkException>(() => repo.LockShared(TimeSpan.FromMilliseconds(300)));
            Assert.Contains("locked by another process", e.Message);
        }
        finally
        {
            holder.StandardInput.Close();
            holder.WaitForExit();
        }
        using (repo.LockShared(TimeSpan.FromMilliseconds(300))) { }
    }

    // ---------------------------------------------------------------- a real tree

    [Fact]
    public void Debian_tree_commit_passes_fsck_and_matches_ostree_commit()
    {
        using var tmp = new TempDir("otdeb");
        var source = Fixtures.DebianTree;
        // ostree commit refuses the device nodes in /dev and has no way to skip them: give it a copy without them.
        Proc.Check("cp", "-a", source, tmp["tree"]);
        Proc.Check("find", tmp["tree"], "(", "-type", "c", "-o", "-type", "b", "-o", "-type", "p", "-o", "-type", "s", ")", "-delete");
        var ours = InitBoth(tmp, "archive", out var theirs);
        var expected = Ostree(["--repo=" + theirs, "commit", "--branch=debian", "--subject=bookworm", $"--timestamp=@{Ts}", tmp["tree"]]).Trim();
        var actual = TreechunkCli.Check("ostree", "commit", "--repo", ours, "--branch=debian", "--subject=bookworm", $"--timestamp=@{Ts}", "--skip-special-files", source).Trim();
        Assert.Equal(expected, actual);
        Assert.Contains("no errors found", Ostree($"--repo={ours}", "fsck"));
        Assert.Equal(ObjectNames(theirs), ObjectNames(ours));
    }
}
