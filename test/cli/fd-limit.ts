import t from 'tap';
import { defaultMaxConnections } from '../../src/cli/fd-limit.js';

const limits = (soft: string): string =>
  `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                20000                files\n`;

t.equal(defaultMaxConnections(limits('20000')), 9968, 'two descriptors per connection, 64 kept back');
t.equal(defaultMaxConnections(limits('1024')), 480);
t.equal(defaultMaxConnections(limits('unlimited')), 4096, 'no number: the fallback');
t.equal(defaultMaxConnections(''), 4096, 'nothing readable: the fallback');
t.equal(defaultMaxConnections(limits('100')), 18);
