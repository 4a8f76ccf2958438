// Mocha's configuration. Under CI a stray `.only` fails the run instead of silently skipping the
// rest of the suite.
module.exports = {
  spec: ['dist/test/**/*.test.js'],
  require: ['dist/test/support/root-hooks.js'],
  timeout: 60000,
  reporter: 'spec',
  'forbid-only': Boolean(process.env.CI),
};
