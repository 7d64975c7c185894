// GraphQL Code Generator loads a document transform from a module that exports
// `transform`: this one is client-preset's own, which selects `__typename` in every
// selection set. Apollo's cache and urql add `__typename` to what they send; with it
// already in the generated documents, what they send is what the persisted-documents
// manifest holds (and what a trusted-documents server accepts).
// Ref: https://the-guild.dev/graphql/codegen/docs/advanced/document-transform
import { addTypenameSelectionDocumentTransform } from "@graphql-codegen/client-preset";

export const { transform } = addTypenameSelectionDocumentTransform;
