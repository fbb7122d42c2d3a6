// Entry module of a stand-in React Native app, bundled by Metro and compiled by hermesc in
// tests/mobile/artefacts.py (metro_hermes_build). The crash: startCheckout() asks the cart
// for its total with a bad code, and the discount deep in cart.js throws a TypeError.
'use strict';

const {Cart} = require('./cart');

function startCheckout(items) {
  const cart = new Cart(items);
  return cart.total('BOGUS');
}

startCheckout([{price: 12, qty: 2}, {price: 5, qty: 1}]);

// Exported only so that the minifier keeps startCheckout a function of its own instead of
// inlining its one call into the module: the crash then has a frame in each function.
module.exports = {startCheckout};
