using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.Data.Sqlite;
using Treechunk.Packages;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using Xunit;
using Xunit.Abstractions;

namespace Treechunk.Tests.Packages;

/// <summary>A tree with an rpm database, built once per test class by tests/fixtures/rpm-tree.sh.</summary>
public sealed class RpmTreeFixture : IDisposable
{
    private readonly TempDir _dir = new("rpmtree");
    public string Root { get; }
    public TimeSpan BuildTime { get; }

    public RpmTreeFixture()
    {
        Tools.Require("rpmbuild");
        Tools.Require("rpm");
        Root = _dir["tree"];
        var sw = Stopwatch.StartNew();
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-tree.sh"), Root);
        BuildTime = sw.Elapsed;
    }

    /// <summary>A private copy of the tree, for tests that change it.</summary>
    public string CopyTo(TempDir dir)
    {
        var target = dir["tree"];
        Proc.Check("cp", "-a", Root, target);
        return target;
    }

    public void Dispose() => _dir.Dispose();
}

public class RpmDatabaseTests(RpmTreeFixture fixture, ITestOutputHelper output) : IClassFixture<RpmTreeFixture>
{
    private const string DbPath = "usr/lib/sysimage/rpm/rpmdb.sqlite";

    private static long Noon(string date) => DateTimeOffset.Parse(date + "T12:00:00Z").ToUnixTimeSeconds();

    [Fact]
    public void SubpackagesShareTheirSourceComponent()
    {
        output.WriteLine($"rpm fixture built in {fixture.BuildTime.TotalSeconds:F1} s");
        Assert.True(File.Exists(Path.Join(fixture.Root, DbPath)));
        using var tree = DirectoryTree.Open(fixture.Root);
        var db = PackageDatabases.Detect(tree);

        Assert.NotNull(db);
        Assert.Equal("rpm", db.Kind);
        AssertFixtureOwnership(db);
    }

    private static void AssertFixtureOwnership(IPackageDatabase db)
    {
        Assert.Equal("hello", db.OwnerOf["usr/bin/hello"]);
        Assert.Equal("hello", db.OwnerOf["usr/lib64/libhello.so.1"]);
        Assert.Equal("hello", db.OwnerOf["usr/share/common/hello.txt"]);
        Assert.Equal("tool", db.OwnerOf["usr/bin/tool"]);
        Assert.Equal("tool", db.OwnerOf["etc/tool.conf"]);
        Assert.Equal("extras", db.OwnerOf["usr/share/common/extras.txt"]);
        // hello and extras both own the directory; "extras" sorts first.
        Assert.Equal("extras", db.OwnerOf["usr/share/common"]);
        Assert.False(db.OwnerOf.ContainsKey(DbPath));

        Assert.Equal(new[] { "extras", "hello", "tool" }, db.Components.Keys);
        Assert.Equal(new[] { "hello", "hello-libs" }, db.Components["hello"].Packages);
        Assert.Equal(new[] { Noon("2024-03-05"), Noon("2024-01-01"), Noon("2023-12-01") }, db.Components["hello"].ChangeTimes);
        Assert.Equal(new[] { Noon("2024-02-14") }, db.Components["tool"].ChangeTimes);
        Assert.Empty(db.Components["extras"].ChangeTimes);
    }

    [Fact]
    public void ReadingLeavesTheTreeUntouched()
    {
        var before = Snapshot(fixture.Root);
        using (var tree = DirectoryTree.Open(fixture.Root))
            Assert.NotNull(PackageDatabases.Detect(tree));
        Assert.Equal(before, Snapshot(fixture.Root));
    }

    [Fact]
    public void RollbackJournalDatabaseIsReadInPlaceWithoutWriting()
    {
        using var dir = new TempDir("rpmjournal");
        var root = fixture.CopyTo(dir);
        var db = Path.Join(root, DbPath);
        using (var c = Open(db))
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode=DELETE";
            Assert.Equal("delete", cmd.ExecuteScalar());
        }
        Assert.False(File.Exists(db + "-wal"));
        var before = Snapshot(root);

        using (var tree = DirectoryTree.Open(root))
            AssertFixtureOwnership(PackageDatabases.Detect(tree)!);
        Assert.Equal(before, Snapshot(root));
    }

    [Fact]
    public void TreeThatIsNotADirectoryIsReadThroughACopy()
    {
        using var inner = DirectoryTree.Open(fixture.Root);
        using var tree = new StreamOnlyTree(inner);
        AssertFixtureOwnership(PackageDatabases.Detect(tree)!);
    }

    [Fact]
    public void UncheckpointedWalIsRead()
    {
        using var dir = new TempDir("rpmwal");
        var root = fixture.CopyTo(dir);
        var db = Path.Join(root, DbPath);
        // Keep a second connection open across a write so the change stays in the WAL, as in a
        // tree captured while rpm was running or exported without a checkpoint.
        using (var holder = Open(db))
        using (var writer = Open(db))
        {
            using (var pragma = writer.CreateCommand())
            {
                pragma.CommandText = "PRAGMA wal_autocheckpoint=0";
                pragma.ExecuteNonQuery();
            }
            using var begin = holder.CreateCommand();
            begin.CommandText = "SELECT count(*) FROM Packages";
            begin.ExecuteScalar();
            using var delete = writer.CreateCommand();
            delete.CommandText = "DELETE FROM Packages WHERE hnum = (SELECT hnum FROM Name WHERE key = 'tool')";
            Assert.Equal(1, delete.ExecuteNonQuery());
            File.Copy(db, dir["db-snapshot"]);
            File.Copy(db + "-wal", dir["wal-snapshot"]);
        }
        // Put back the state of the moment: main file without the delete, WAL with it.
        File.Copy(dir["db-snapshot"], db, overwrite: true);
        File.Copy(dir["wal-snapshot"], db + "-wal", overwrite: true);
        File.Delete(db + "-shm");
        Assert.True(new FileInfo(db + "-wal").Length > 0);

        using var tree = DirectoryTree.Open(root);
        var pdb = PackageDatabases.Detect(tree)!;
        Assert.False(pdb.Components.ContainsKey("tool"));
        Assert.Equal("hello", pdb.OwnerOf["usr/bin/hello"]);
    }

    [Fact]
    public void CorruptHeaderBlobIsAClearError()
    {
        using var dir = new TempDir("rpmcorrupt");
        var root = fixture.CopyTo(dir);
        long hnum;
        using (var c = Open(Path.Join(root, DbPath)))
        {
            using var find = c.CreateCommand();
            find.CommandText = "SELECT hnum FROM Name WHERE key = 'tool'";
            hnum = (long)find.ExecuteScalar()!;
            using var update = c.CreateCommand();
            update.CommandText = "UPDATE Packages SET blob = substr(blob, 1, 200) WHERE hnum = $h";
            update.Parameters.AddWithValue("$h", hnum);
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        using var tree = DirectoryTree.Open(root);
        var e = Assert.Throws<TreechunkException>(() => PackageDatabases.Detect(tree));
        Assert.Contains($"package header {hnum} is malformed", e.Message);
        Assert.Contains(DbPath, e.Message);
    }

    [Fact]
    public void DatabaseThatIsNotSqliteIsAClearError()
    {
        using var dir = new TempDir("rpmjunk");
        DpkgDatabaseTests.Write(dir.Path, DbPath, "this is not a database, just text long enough to fill a header page ......................................");
        using var tree = DirectoryTree.Open(dir.Path);
        var e = Assert.Throws<TreechunkException>(() => PackageDatabases.Detect(tree));
        Assert.Contains(DbPath, e.Message);
    }

    [Fact]
    public void BerkeleyDatabaseIsReportedAndSkipped()
    {
        using var dir = new TempDir("rpmbdb");
        DpkgDatabaseTests.Write(dir.Path, "var/lib/rpm/Packages", "bdb");
        using var tree = DirectoryTree.Open(dir.Path);
        var warnings = new List<string>();
        Assert.Null(PackageDatabases.Detect(tree, warnings.Add));
        Assert.Single(warnings);
        Assert.Contains("var/lib/rpm/Packages", warnings[0]);
    }

    [Fact]
    public void MutatedRealHeadersFailOnlyWithTreechunkException()
    {
        var blobs = ReadBlobs(fixture.Root);
        Assert.Equal(4, blobs.Count);
        var random = new Random(20240305);
        int rejected = 0, total = 0;
        foreach (var blob in blobs)
        {
            int il = BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(0));
            int indexEnd = 8 + 16 * il;
            for (int round = 0; round < 500; round++)
            {
                var mutated = (byte[])blob.Clone();
                switch (round % 3)
                {
                    case 0: // the index is where offsets and counts live
                        for (int k = 0; k < 3; k++) mutated[random.Next(indexEnd)] = (byte)random.Next(256);
                        break;
                    case 1:
                        for (int k = 0; k < 8; k++) mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
                        break;
                    default:
                        mutated = mutated[..random.Next(mutated.Length)];
                        break;
                }
                total++;
                try
                {
                    RpmPackage.From(RpmHeader.Parse(mutated, "test header"), 1);
                }
                catch (TreechunkException e)
                {
                    Assert.StartsWith("test header is malformed", e.Message);
                    rejected++;
                }
            }
        }
        output.WriteLine($"{rejected} of {total} mutated headers rejected");
        Assert.True(rejected > total / 4);
    }

    [Fact]
    public void DirIndexOutsideDirNamesIsMalformed()
    {
        var blob = BuildHeader(
            (1000, 6, 1, Strings("pkg")),
            (1044, 6, 1, Strings("pkg-1-1.src.rpm")),
            (1116, 4, 2, Ints(0, 1)),
            (1117, 8, 2, Strings("a", "b")),
            (1118, 8, 1, Strings("/usr/bin/")));
        var e = Assert.Throws<TreechunkException>(() => RpmPackage.From(RpmHeader.Parse(blob, "h"), 1));
        Assert.Contains("DIRINDEXES[1] = 1", e.Message);
    }

    [Fact]
    public void SyntheticHeaderWithRegionTagAndOldFileNames()
    {
        var blob = BuildHeader(
            (63, 7, 16, new byte[16]),
            (1000, 6, 1, Strings("old")),
            (1044, 6, 1, Strings("old-src-2.0-1.el5.nosrc.rpm")),
            (1080, 4, 2, Ints(unchecked((int)3000000000u), 1000)),
            (1027, 8, 2, Strings("/bin/a", "/etc/b")));
        var pkg = RpmPackage.From(RpmHeader.Parse(blob, "h"), 7)!;
        Assert.Equal("old-src", pkg.Component);
        Assert.Equal(new[] { "/bin/a", "/etc/b" }, pkg.Files);
        Assert.Equal(new[] { 3000000000L, 1000L }, pkg.ChangeTimes);
    }

    [Fact]
    public void PubkeyWithoutSourceIsSkipped()
    {
        var blob = BuildHeader((1000, 6, 1, Strings("gpg-pubkey")));
        Assert.Null(RpmPackage.From(RpmHeader.Parse(blob, "h"), 1));
    }

    [Theory]
    [InlineData("openssl-3.0.7-2.fc38.src.rpm", "openssl")]
    [InlineData("python-setuptools-67.7.2-8.fc39.src.rpm", "python-setuptools")]
    [InlineData("kernel-6.5.6-300.fc39.nosrc.rpm", "kernel")]
    [InlineData("weird.src.rpm", "bin")]
    public void SourceRpmNames(string sourceRpm, string expected) => Assert.Equal(expected, RpmPackage.ComponentOf(sourceRpm, "bin"));

    private static byte[] Strings(params string[] values) => values.SelectMany(v => Encoding.UTF8.GetBytes(v + "\0")).ToArray();

    private static byte[] Ints(params int[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    private static byte[] BuildHeader(params (int Tag, int Type, int Count, byte[] Data)[] entries)
    {
        var data = new List<byte>();
        var index = new List<byte>();
        foreach (var (tag, type, count, bytes) in entries)
        {
            if (type == 4) while (data.Count % 4 != 0) data.Add(0);
            index.AddRange(Ints(tag, type, data.Count, count));
            data.AddRange(bytes);
        }
        return [.. Ints(entries.Length, data.Count), .. index, .. data];
    }

    private static SqliteConnection Open(string file)
    {
        // Index tables reference Packages; tests edit Packages alone and the reader never looks at them.
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Pooling = false, ForeignKeys = false }.ConnectionString);
        c.Open();
        return c;
    }

    private static List<byte[]> ReadBlobs(string root)
    {
        using var dir = new TempDir("rpmblobs");
        var copy = dir["rpmdb.sqlite"];
        File.Copy(Path.Join(root, DbPath), copy);
        using var c = Open(copy);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT blob FROM Packages ORDER BY hnum";
        using var reader = cmd.ExecuteReader();
        var blobs = new List<byte[]>();
        while (reader.Read()) blobs.Add((byte[])reader.GetValue(0));
        return blobs;
    }

    private static string Snapshot(string root) => string.Join("\n",
        new DirectoryInfo(root).EnumerateFileSystemInfos("*", SearchOption.AllDirectories)
            .Select(i => $"{Path.GetRelativePath(root, i.FullName)} {(i as FileInfo)?.Length} {i.LastWriteTimeUtc.Ticks}")
            .OrderBy(s => s, StringComparer.Ordinal));

    /// <summary>Hides that a tree is a directory, as an image or a commit would.</summary>
    private sealed class StreamOnlyTree(ITree inner) : ITree
    {
        public string Description => "stream-only " + inner.Description;
        public IReadOnlyList<TreeEntry> Entries => inner.Entries;
        public Stream OpenContent(TreeEntry entry) => inner.OpenContent(entry);
        public TreeEntry? Find(string path) => inner.Find(path);
        public void Dispose() { }
    }
}
