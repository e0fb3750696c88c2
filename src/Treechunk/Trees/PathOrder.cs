namespace Treechunk.Trees;

/// <summary>
/// Puts a tree's entries in ordinal order of their full paths from each directory's listing
/// alone, for trees whose entries are in compact form and have no path string to sort by.
/// Under a directory, an entry's path is its name and the paths of its contents start with its
/// name and '/'; ordering the names and the "name/" keys of the subdirectories together, and
/// putting each subdirectory's contents at its key, gives the order of the full paths ("a",
/// "a-b", "a/x": '-' sorts before '/'), with no path string made.
/// </summary>
public static class PathOrder
{
    /// <param name="top">The items directly under the root.</param>
    /// <param name="entryOf">An item's entry (its name and type are what count).</param>
    /// <param name="contentsOf">The items directly under a directory item, or null if it has none.</param>
    public static IEnumerable<T> Walk<T>(List<T> top, Func<T, TreeEntry> entryOf, Func<T, List<T>?> contentsOf) where T : class
    {
        var stack = new Stack<(Item<T>[] Items, int Next)>();
        stack.Push((Items(top, entryOf), 0));
        while (stack.Count > 0)
        {
            var (items, next) = stack.Pop();
            if (next == items.Length) continue;
            stack.Push((items, next + 1));
            var item = items[next];
            if (!item.Contents) yield return item.Value;
            else if (contentsOf(item.Value) is { } inside) stack.Push((Items(inside, entryOf), 0));
        }
    }

    private static Item<T>[] Items<T>(List<T> values, Func<T, TreeEntry> entryOf) where T : class
    {
        var items = new List<Item<T>>(values.Count + values.Count / 4);
        foreach (var v in values)
        {
            var e = entryOf(v);
            items.Add(new Item<T>(v, e.Name, false));
            if (e.Type == EntryType.Directory) items.Add(new Item<T>(v, e.Name, true));
        }
        var array = items.ToArray();
        Array.Sort(array, Item<T>.Compare);
        return array;
    }

    // A class, not a struct: collections of reference types share precompiled code, while each
    // struct instantiation is compiled at run time, on every short build.
    /// <summary>An entry (its name as the key) or a directory's contents (key: its name and '/').</summary>
    private sealed record Item<T>(T Value, string Name, bool Contents)
    {
        public static int Compare(Item<T> a, Item<T> b)
        {
            string x = a.Name, y = b.Name;
            int lx = x.Length + (a.Contents ? 1 : 0), ly = y.Length + (b.Contents ? 1 : 0);
            for (int i = 0, n = Math.Min(lx, ly); i < n; i++)
            {
                char cx = i < x.Length ? x[i] : '/', cy = i < y.Length ? y[i] : '/';
                if (cx != cy) return cx - cy;
            }
            return lx - ly;
        }
    }
}
