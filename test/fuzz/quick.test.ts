// The quick version of every fuzz target, run by `npm test`: the same properties and seeds as
// `npm run fuzz`, with a small budget each (see support.ts). The full run loads the *.fuzz.js
// files directly and never this file.
import './wire/receiver.fuzz.js';
import './wire/messages.fuzz.js';
import './common/address.fuzz.js';
import './proxy-server/connect-frontend.fuzz.js';
import './federation/apiserver/body.fuzz.js';
import './federation/apiserver/protobuf.fuzz.js';
import './federation/apiserver/patch.fuzz.js';
import './federation/apiserver/strategic-merge.fuzz.js';
import './federation/apiserver/conversion.fuzz.js';
import './federation/controller/member-config.fuzz.js';
import './common/flags.fuzz.js';
import './proxy-server/options.fuzz.js';
import './cluster-agent/options.fuzz.js';
import './federation/apiserver/options.fuzz.js';
import './federation/admin/options.fuzz.js';
