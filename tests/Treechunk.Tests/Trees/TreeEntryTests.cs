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
}
