using Treechunk.Trees;

namespace Treechunk.Tests.Trees;

public class TreeEntryTests
{
    /// <summary>
    /// Compact entries spell their paths out in a stack buffer, or a pooled one past its size;
    /// on paths short and long (past 256 and 1024 characters) the comparisons, the hash and the
    /// prefix test must agree with the same operations on the composed strings.
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 60)]
    public bool Path_operations_agree_with_the_composed_string_at_any_length(int seed)
    {
        var rng = new Random(seed);
        TreeEntry Chain(int depth, int minName = 1)
        {
            TreeEntry? dir = null;
            for (int i = 0; i < depth; i++)
                dir = new TreeEntry(dir, new string((char)('a' + rng.Next(3)), rng.Next(minName, 120)), EntryType.Directory, 0x1ED);
            return new TreeEntry(dir, "f" + rng.Next(3), EntryType.Regular, 0x1A4);
        }
        var entries = Enumerable.Range(0, 8).Select(_ => Chain(rng.Next(0, 25))).ToList();
        entries.Add(Chain(20, minName: 60));
        entries.Add(entries[0].DirectoryEntry is { } d ? new TreeEntry(d, "f0", EntryType.Regular, 0x1A4) : Chain(1));
        foreach (var a in entries)
        {
            var pa = a.Path;
            if (a.PathHashCode() != string.GetHashCode(pa.AsSpan())) return false;
            foreach (var b in entries)
            {
                var pb = b.Path;
                if (Math.Sign(TreeEntry.ComparePaths(a, b)) != Math.Sign(string.CompareOrdinal(pa, pb))) return false;
                if (a.PathStartsWith(pb) != pa.StartsWith(pb, StringComparison.Ordinal)) return false;
                var cut = pb[..rng.Next(pb.Length + 1)];
                if (a.PathStartsWith(cut) != pa.StartsWith(cut, StringComparison.Ordinal)) return false;
            }
        }
        return entries.Any(e => e.PathLength > 1024);
    }

    /// <summary>
    /// Owner, device and inode fields live in a side record shared while they are defaults; a
    /// copy made with `with` and then changed must not change the entry it was copied from.
    /// </summary>
    [Fact]
    public void A_changed_copy_leaves_the_original_as_it_was()
    {
        var a = new TreeEntry { Path = "dev/null", Type = EntryType.CharDevice, Mode = 0x1B6, Uid = 5, DevMajor = 1, DevMinor = 3 };
        var b = a with { Gid = 7, DevMinor = 4, InodeKey = 9, LinkCount = 2 };
        var c = new TreeEntry { Path = "etc", Type = EntryType.Directory, Mode = 0x1ED };

        Assert.Equal((5, 0, 1, 3, 0UL, 1), (a.Uid, a.Gid, a.DevMajor, a.DevMinor, a.InodeKey, a.LinkCount));
        Assert.Equal((5, 7, 1, 4, 9UL, 2), (b.Uid, b.Gid, b.DevMajor, b.DevMinor, b.InodeKey, b.LinkCount));
        Assert.Equal((0, 0, 0, 0, 0UL, 1), (c.Uid, c.Gid, c.DevMajor, c.DevMinor, c.InodeKey, c.LinkCount));
        Assert.NotEqual(a, b);
        Assert.Equal(a, a with { });
        Assert.Equal(a, b with { Gid = 0, DevMinor = 3, InodeKey = 0, LinkCount = 1 });
    }
}
