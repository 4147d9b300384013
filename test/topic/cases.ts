/**
 * Named filter/topic cases shared by the matcher and trie tests, so that both are held to
 * one table. `match: true` means the filter matches the topic name.
 */
export interface MatchCase {
  name: string;
  filter: string;
  topic: string;
  match: boolean;
}

export const MATCH_CASES: readonly MatchCase[] = [
  // Exact filters.
  { name: 'exact equal', filter: 'a/b/c', topic: 'a/b/c', match: true },
  { name: 'exact longer topic', filter: 'a/b', topic: 'a/b/c', match: false },
  { name: 'exact shorter topic', filter: 'a/b/c', topic: 'a/b', match: false },
  { name: 'exact is case sensitive', filter: 'A/b', topic: 'a/b', match: false },
  { name: 'exact is not a prefix match', filter: 'a', topic: 'ab', match: false },
  // `+`: exactly one level.
  { name: '+ one level', filter: 'a/+/c', topic: 'a/b/c', match: true },
  { name: '+ not zero levels', filter: 'a/+', topic: 'a', match: false },
  { name: '+ not two levels', filter: 'a/+', topic: 'a/b/c', match: false },
  { name: '+ alone, one level', filter: '+', topic: 'a', match: true },
  { name: '+ alone, two levels', filter: '+', topic: 'a/b', match: false },
  { name: '+/+ all', filter: '+/+', topic: 'a/b', match: true },
  { name: '+ at the end', filter: 'a/b/+', topic: 'a/b/c', match: true },
  // `#`: the parent level and everything below.
  { name: '# alone', filter: '#', topic: 'a/b/c', match: true },
  { name: '# one level topic', filter: '#', topic: 'a', match: true },
  { name: 'a/# matches parent a', filter: 'a/#', topic: 'a', match: true },
  { name: 'a/# matches a/b', filter: 'a/#', topic: 'a/b', match: true },
  { name: 'a/# matches deep', filter: 'a/#', topic: 'a/b/c/d', match: true },
  { name: 'a/# not ab', filter: 'a/#', topic: 'ab', match: false },
  { name: 'a/# not b/a', filter: 'a/#', topic: 'b/a', match: false },
  { name: 'a/b/# not a', filter: 'a/b/#', topic: 'a', match: false },
  { name: '+/# matches one level', filter: '+/#', topic: 'a', match: true },
  { name: '+/+/# matches two levels', filter: '+/+/#', topic: 'a/b', match: true },
  { name: '+/+/# not one level', filter: '+/+/#', topic: 'a', match: false },
  // Empty levels are real levels.
  { name: 'empty middle level, exact', filter: 'a//b', topic: 'a//b', match: true },
  { name: 'empty middle level, +', filter: 'a/+/b', topic: 'a//b', match: true },
  { name: 'a//b is not a/b', filter: 'a/b', topic: 'a//b', match: false },
  { name: 'leading slash, exact', filter: '/a', topic: '/a', match: true },
  { name: 'leading slash, +', filter: '+/a', topic: '/a', match: true },
  { name: 'leading slash, /+', filter: '/+', topic: '/a', match: true },
  { name: 'leading slash, #', filter: '#', topic: '/a', match: true },
  { name: 'leading slash, /#', filter: '/#', topic: '/a', match: true },
  { name: 'leading slash is not a', filter: 'a', topic: '/a', match: false },
  { name: 'trailing slash, a/+', filter: 'a/+', topic: 'a/', match: true },
  { name: 'trailing slash, a/#', filter: 'a/#', topic: 'a/', match: true },
  { name: 'trailing slash is not a', filter: 'a', topic: 'a/', match: false },
  { name: '+ does not match /', filter: '+', topic: '/', match: false },
  { name: '+/+ matches /', filter: '+/+', topic: '/', match: true },
  { name: '/ matches /', filter: '/', topic: '/', match: true },
  { name: '# matches /', filter: '#', topic: '/', match: true },
  { name: '+/# matches /', filter: '+/#', topic: '/', match: true },
  // [MQTT-4.7.2-1] `$` topics and filters starting with a wildcard.
  { name: '# not $SYS', filter: '#', topic: '$SYS/uptime', match: false },
  { name: '+/uptime not $SYS', filter: '+/uptime', topic: '$SYS/uptime', match: false },
  { name: '+/# not $SYS', filter: '+/#', topic: '$SYS/uptime', match: false },
  { name: '+ not $x', filter: '+', topic: '$x', match: false },
  { name: '$SYS/# matches $SYS', filter: '$SYS/#', topic: '$SYS/uptime', match: true },
  { name: '$SYS/# matches $SYS parent', filter: '$SYS/#', topic: '$SYS', match: true },
  { name: '$SYS/+ matches', filter: '$SYS/+', topic: '$SYS/uptime', match: true },
  { name: '$SYS exact', filter: '$SYS/uptime', topic: '$SYS/uptime', match: true },
  { name: '+ at level 2 sees $', filter: 'a/+', topic: 'a/$b', match: true },
  { name: '# at level 2 sees $', filter: 'a/#', topic: 'a/$b', match: true },
  { name: '$ inside the first level is plain', filter: '#', topic: 'a$b', match: true },
];
