using System.Text;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.Trees;

public class DirectoryTreeTests
{
    [Fact]
    public void A_file_swapped_for_a_symlink_after_the_scan_is_refused_not_followed()
    {
        using var dir = new TempDir();
        using var outside = new TempDir();
        File.WriteAllText(outside["secret"], "host data");
        Directory.CreateDirectory(dir["root/etc"]);
        File.WriteAllText(dir["root/etc/motd"], "hello");
        var tree = DirectoryTree.Open(dir["root"]);
        var motd = tree.Find("etc/motd")!;

        File.Delete(dir["root/etc/motd"]);
        File.CreateSymbolicLink(dir["root/etc/motd"], outside["secret"]);

        var e = Assert.ThrowsAny<IOException>(() => { using var s = tree.OpenContent(motd); s.ReadByte(); });
        Assert.Contains("etc/motd", e.Message);
    }

    [Fact]
    public void A_file_removed_after_the_scan_gives_an_error_naming_it()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["gone"], "x");
        var tree = DirectoryTree.Open(dir.Path);
        File.Delete(dir["gone"]);
        var e = Assert.ThrowsAny<IOException>(() => tree.OpenContent(tree.Find("gone")!));
        Assert.Contains("gone", e.Message);
        Assert.Contains("No such file", e.Message);
    }

    [Fact]
    public void Reads_content_names_and_link_targets_byte_for_byte()
    {
        using var dir = new TempDir();
        var names = new[] { "plain", "with space", "ünïcödé", "日本語", ".hidden", new string('n', 255) };
        var payload = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        foreach (var n in names) File.WriteAllBytes(dir[n], payload);
        File.CreateSymbolicLink(dir["link"], "../" + new string('t', 1000) + "/ünï");

        var tree = DirectoryTree.Open(dir.Path);

        Assert.Equal(names.Append("link").OrderBy(n => n, StringComparer.Ordinal), tree.Entries.Select(e => e.Path));
        Assert.Equal("../" + new string('t', 1000) + "/ünï", tree.Find("link")!.LinkTarget);
        foreach (var n in names)
        {
            using var s = tree.OpenContent(tree.Find(n)!);
            using var copy = new MemoryStream();
            s.CopyTo(copy, 4096);
            Assert.Equal(payload, copy.ToArray());
            Assert.Equal(0, s.Read(new byte[10])); // stays at end
        }
    }

    [Fact]
    public void Scanning_twice_gives_the_same_entries_and_warnings_in_the_same_order()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 40; i++)
        {
            Directory.CreateDirectory(dir[$"d{i % 7}/s{i % 3}"]);
            File.WriteAllText(dir[$"d{i % 7}/s{i % 3}/f{i}"], new string('x', i));
            // Sockets are skipped with a warning; make several, in different directories
            // (with python: .NET unlinks a bound socket's file when the socket is disposed).
            if (i % 5 == 0)
                Proc.Check("python3", "-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{dir[$"d{i % 7}/sock{i}"]}')");
        }
        var w1 = new List<string>();
        var w2 = new List<string>();
        var t1 = DirectoryTree.Open(dir.Path, w1.Add);
        var t2 = DirectoryTree.Open(dir.Path, w2.Add);
        Assert.Equal(8, w1.Count);
        Assert.Equal(w1, w2);
        Assert.Equal(t1.Entries.Select(e => e.Path), t2.Entries.Select(e => e.Path));
        Assert.DoesNotContain(t1.Entries, e => e.Path.Contains("sock"));
    }

    /// <summary>
    /// The scan orders entries from each directory's names alone (entries in compact form have
    /// no path string); on random trees whose names share prefixes with '-', '.', '0' and '~'
    /// around '/', and non-ASCII names, the order must be the ordinal order of the full paths,
    /// every path and none other must be found, and an entry must equal its string-path copy.
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 40)]
    public bool Entries_come_in_ordinal_path_order_and_are_found_by_path(int seed)
    {
        using var dir = new TempDir();
        var rng = new Random(seed);
        string[] pieces = ["a", "a-b", "a.b", "a0", "a~", "ab", "b", "\u00e9", "A"];
        var expected = new List<string>();
        void Fill(string rel, int depth)
        {
            foreach (var name in pieces.OrderBy(_ => rng.Next()).Take(rng.Next(1, 5)).Distinct())
            {
                var path = rel.Length == 0 ? name : rel + "/" + name;
                if (expected.Contains(path)) continue;
                expected.Add(path);
                if (depth < 3 && rng.Next(3) > 0)
                {
                    Directory.CreateDirectory(Path.Join(dir.Path, path));
                    Fill(path, depth + 1);
                }
                else File.WriteAllText(Path.Join(dir.Path, path), path);
            }
        }
        Fill("", 0);
        var tree = DirectoryTree.Open(dir.Path);
        var paths = tree.Entries.Select(e => e.Path).ToList();
        expected.Sort(StringComparer.Ordinal);
        return paths.SequenceEqual(expected)
               && tree.Entries.All(e => ReferenceEquals(tree.Find(e.Path), e) && e.PathEquals(e.Path) && e.PathLength == e.Path.Length)
               && tree.Entries.All(e => e.Equals(e with { Path = e.Path }) && (e with { Path = e.Path }).Equals(e)
                                        && e.GetHashCode() == (e with { Path = e.Path }).GetHashCode())
               && tree.Find("a/zz") == null && tree.Find("a-") == null && tree.Find("") == null && tree.Find("/a") == null
               && tree.Entries.Zip(tree.Entries.Skip(1)).All(p => TreeEntry.ComparePaths(p.First, p.Second) < 0);
    }
}
